package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/test/grpcecho"
	"github.com/kakehi/kakehi/test/harness"
)

// startGRPCPod serves grpcEcho on ip, on a free port.
func startGRPCPod(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	grpcecho.Serve(t, l)
	return l.Addr().(*net.TCPAddr).Port
}

// TestGRPCThroughKubernetes: a Service port with appProtocol
// kubernetes.io/h2c, its EndpointSlice and an Ingress for grpc.test; a
// grpc-go client on the controller's plain port reaches the gRPC pod:
// unary, server streaming, an error status with its message.
func TestGRPCThroughKubernetes(t *testing.T) {
	ctx := context.Background()
	ip := harness.PodIP(70, 0)
	port := startGRPCPod(t, ip)
	svc := harness.Service("grpc", "echo")
	svc.Spec.Ports = []corev1.ServicePort{{Name: "grpc", Port: 50051, TargetPort: intstr.FromInt32(int32(port)),
		Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("kubernetes.io/h2c")}}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "grpc", Name: "echo-1", Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("grpc"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP),
			AppProtocol: ptr.To("kubernetes.io/h2c")}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	ing := harness.Ingress("grpc", "echo", className, harness.Rule("grpc.test",
		pathTo(prefix, "/", harness.ServiceBackend("echo", "50051"))))
	if err := harness.CreateAll(ctx, env.cp.Client, []client.Object{harness.Namespace("grpc"), svc, es, ing}...); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+env.ctrl.HTTPAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("grpc.test"),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(grpcecho.RawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call := func(in string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		b, out := []byte(in), []byte(nil)
		err := conn.Invoke(cctx, grpcecho.EchoMethod, &b, &out)
		return string(out), err
	}
	eventually(t, 15*time.Second, func() error {
		if out, err := call("hi"); err != nil || out != "echo:hi" {
			return fmt.Errorf("unary: %q %v", out, err)
		}
		return nil
	})
	_, err = call("missing")
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such thing: missing" {
		t.Fatalf("error status: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cs, err := conn.NewStream(sctx, &grpcecho.Service.Streams[0], grpcecho.CountMethod)
	if err != nil {
		t.Fatal(err)
	}
	in := []byte("5")
	if err := cs.SendMsg(&in); err != nil {
		t.Fatal(err)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= 5; i++ {
		var m []byte
		err := cs.RecvMsg(&m)
		if i == 5 {
			if err != io.EOF {
				t.Fatalf("after 5 messages: %v", err)
			}
			break
		}
		if err != nil || string(m) != strconv.Itoa(i) {
			t.Fatalf("message %d: %q %v", i, m, err)
		}
	}
}
