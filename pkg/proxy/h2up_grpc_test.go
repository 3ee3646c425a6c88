package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// rawCodec passes gRPC messages as *[]byte, so that no protoc step is
// needed.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

// echoService is a hand-registered gRPC service: Echo (unary; "missing"
// fails with NotFound), Count (server streaming: n messages) and Chat
// (bidi: each message back, upper-cased by a prefix).
var echoService = grpc.ServiceDesc{
	ServiceName: "kakehi.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Echo", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in []byte
		if err := dec(&in); err != nil {
			return nil, err
		}
		if string(in) == "missing" {
			return nil, status.Error(codes.NotFound, "no such thing: missing")
		}
		out := append([]byte("echo:"), in...)
		return &out, nil
	}}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Count", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			var in []byte
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(in))
			for i := 0; i < n; i++ {
				m := []byte(strconv.Itoa(i))
				if err := ss.SendMsg(&m); err != nil {
					return err
				}
			}
			return nil
		}},
		{StreamName: "Chat", ServerStreams: true, ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			for {
				var in []byte
				if err := ss.RecvMsg(&in); err != nil {
					if errors.Is(err, io.EOF) {
						return status.Error(codes.Aborted, "chat over")
					}
					return err
				}
				out := append([]byte("re:"), in...)
				if err := ss.SendMsg(&out); err != nil {
					return err
				}
			}
		}},
	},
}

// TestGRPCEndToEnd runs a real grpc-go client against the proxy (h2c with
// prior knowledge) and a real grpc-go server behind it.
func TestGRPCEndToEnd(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	gs.RegisterService(&echoService, nil)
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(l) }()
	t.Cleanup(func() { gs.Stop(); <-served })

	h := newHarness(t)
	h.routeH2C(l.Addr().String())
	conn, err := grpc.NewClient("passthrough:///"+h.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	in, out := []byte("hi"), []byte(nil)
	if err := conn.Invoke(ctx, "/kakehi.test.Echo/Echo", &in, &out); err != nil || string(out) != "echo:hi" {
		t.Fatalf("unary: %q %v", out, err)
	}
	in = []byte("missing")
	err = conn.Invoke(ctx, "/kakehi.test.Echo/Echo", &in, &out)
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such thing: missing" {
		t.Fatalf("error status: %v", err)
	}

	cs, err := conn.NewStream(ctx, &echoService.Streams[0], "/kakehi.test.Echo/Count")
	if err != nil {
		t.Fatal(err)
	}
	in = []byte("5")
	if err := cs.SendMsg(&in); err != nil {
		t.Fatal(err)
	}
	_ = cs.CloseSend()
	for i := 0; i < 5; i++ {
		if err := cs.RecvMsg(&out); err != nil || string(out) != strconv.Itoa(i) {
			t.Fatalf("server stream %d: %q %v", i, out, err)
		}
	}
	if err := cs.RecvMsg(&out); !errors.Is(err, io.EOF) {
		t.Fatalf("server stream end: %v", err)
	}

	bs, err := conn.NewStream(ctx, &echoService.Streams[1], "/kakehi.test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		in = []byte("m" + strconv.Itoa(i))
		if err := bs.SendMsg(&in); err != nil {
			t.Fatal(err)
		}
		if err := bs.RecvMsg(&out); err != nil || string(out) != "re:m"+strconv.Itoa(i) {
			t.Fatalf("bidi %d: %q %v", i, out, err)
		}
	}
	_ = bs.CloseSend()
	err = bs.RecvMsg(&out)
	if st := status.Convert(err); st.Code() != codes.Aborted || st.Message() != "chat over" {
		t.Fatalf("bidi end: %v", err)
	}
}

// BenchmarkH2ForwardH2C is BenchmarkH2Forward with an h2c backend (net/http's
// HTTP/2 server, in process: its allocations count too).
func BenchmarkH2ForwardH2C(b *testing.B) {
	for _, depth := range []int{1, 50} {
		b.Run("streams="+strconv.Itoa(depth), func(b *testing.B) {
			h := newHarnessWith(b, io.Discard)
			body := []byte("0123456789012345678901234567890123456789012")
			be := newH2CBackend(b, 0, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "43")
				_, _ = w.Write(body)
			})
			h.routeH2C(be.addr)
			c := newH2BenchClient(b, h.addr)
			defer c.nc.Close()
			c.run(b, depth, depth)
			b.ReportAllocs()
			b.ResetTimer()
			c.run(b, b.N, depth)
			b.StopTimer()
		})
	}
}
