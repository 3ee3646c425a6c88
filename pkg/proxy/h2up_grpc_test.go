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

	"github.com/kakehi/kakehi/test/grpcecho"
)

// TestGRPCEndToEnd runs a real grpc-go client against the proxy (h2c with
// prior knowledge) and a real grpc-go server behind it.
func TestGRPCEndToEnd(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcecho.Serve(t, l)

	h := newHarness(t)
	h.routeH2C(l.Addr().String())
	conn, err := grpc.NewClient("passthrough:///"+h.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(grpcecho.RawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	in, out := []byte("hi"), []byte(nil)
	if err := conn.Invoke(ctx, grpcecho.EchoMethod, &in, &out); err != nil || string(out) != "echo:hi" {
		t.Fatalf("unary: %q %v", out, err)
	}
	in = []byte("missing")
	err = conn.Invoke(ctx, grpcecho.EchoMethod, &in, &out)
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such thing: missing" {
		t.Fatalf("error status: %v", err)
	}

	cs, err := conn.NewStream(ctx, &grpcecho.Service.Streams[0], grpcecho.CountMethod)
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

	bs, err := conn.NewStream(ctx, &grpcecho.Service.Streams[1], grpcecho.ChatMethod)
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
