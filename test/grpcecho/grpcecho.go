// Package grpcecho is a gRPC service for tests, registered by hand with a
// raw codec so that no protoc step is needed: Echo (unary; "missing" fails
// with NotFound), Count (server streaming: n messages) and Chat (bidi: each
// message back with a prefix, then Aborted when the client ends).
package grpcecho

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Method paths of the service.
const (
	EchoMethod  = "/kakehi.test.Echo/Echo"
	CountMethod = "/kakehi.test.Echo/Count"
	ChatMethod  = "/kakehi.test.Echo/Chat"
)

// RawCodec passes gRPC messages as *[]byte.
type RawCodec struct{}

// Marshal returns the bytes v points at.
func (RawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }

// Unmarshal copies data into the slice v points at.
func (RawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}

// Name returns "raw".
func (RawCodec) Name() string { return "raw" }

// Service is the service description; Streams[0] is Count, Streams[1] Chat.
var Service = grpc.ServiceDesc{
	ServiceName: "kakehi.test.Echo",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Echo", Handler: echo}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Count", ServerStreams: true, Handler: count},
		{StreamName: "Chat", ServerStreams: true, ClientStreams: true, Handler: chat},
	},
}

func echo(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	if string(in) == "missing" {
		return nil, status.Error(codes.NotFound, "no such thing: missing")
	}
	out := append([]byte("echo:"), in...)
	return &out, nil
}

func count(_ any, ss grpc.ServerStream) error {
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
}

func chat(_ any, ss grpc.ServerStream) error {
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
}

// Serve serves the service on l until the test ends.
func Serve(t testing.TB, l net.Listener) {
	gs := grpc.NewServer(grpc.ForceServerCodec(RawCodec{}))
	gs.RegisterService(&Service, nil)
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(l) }()
	t.Cleanup(func() { gs.Stop(); <-served })
}
