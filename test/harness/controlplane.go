package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
)

// ControlPlane is a running kube-apiserver and etcd.
type ControlPlane struct {
	Env        *envtest.Environment
	Config     *rest.Config
	Client     client.Client
	Clientset  *kubernetes.Clientset
	Kubeconfig string // path of a kubeconfig file for the admin user
	dir        string
}

// RepoRoot returns the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ControlPlaneBinaries returns the folder holding kube-apiserver and etcd:
// $KAKEHI_CONTROL_PLANE_DIR when set, else whatever
// hack/build-control-plane.sh builds or finds in its cache.
func ControlPlaneBinaries() (string, error) {
	if d := os.Getenv("KAKEHI_CONTROL_PLANE_DIR"); d != "" {
		return d, nil
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "build-control-plane.sh"))
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building control plane: %v: %s", err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// StartControlPlane starts a control plane in the current (private)
// namespace, advertising APIServerAddr. crdDirs are installed when given.
func StartControlPlane(crdDirs ...string) (*ControlPlane, error) {
	bin, err := ControlPlaneBinaries()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    len(crdDirs) > 0,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	dir, err := os.MkdirTemp("", "kakehi-cp-")
	if err != nil {
		return nil, err
	}
	apiserver := env.ControlPlane.GetAPIServer()
	apiserver.Configure().Set("advertise-address", APIServerAddr)
	// A fixed cert dir keeps the serving certificate across a restart of
	// the API server (StopAPIServer, StartAPIServer).
	apiserver.CertDir = filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(apiserver.CertDir, 0o700); err != nil {
		return nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting control plane: %w", err)
	}
	cp := &ControlPlane{Env: env, Config: cfg, dir: dir}
	if err := cp.init(); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) init() error {
	var err error
	scheme := kruntime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return err
	}
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if cp.Clientset, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return err
	}
	cp.Kubeconfig = filepath.Join(cp.dir, "kubeconfig")
	return os.WriteFile(cp.Kubeconfig, cp.Env.KubeConfig, 0o600)
}

// WaitForResource waits until the API server serves gvr, e.g. after a CRD
// is installed.
func (cp *ControlPlane) WaitForResource(ctx context.Context, gvr schema.GroupVersionResource) error {
	for {
		list, err := cp.Clientset.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
		if err == nil {
			for _, r := range list.APIResources {
				if r.Name == gvr.Resource {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("resource %s not served: %w", gvr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StopAPIServer kills kube-apiserver alone (etcd keeps running), as a
// crash would, and waits until it is gone. Only a kube-apiserver that is a
// child of this process is touched.
func (cp *ControlPlane) StopAPIServer() error {
	pid, err := childProcess("kube-apiserver")
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	return cp.Env.ControlPlane.APIServer.Stop() // reaps the process
}

// childProcess returns the pid of this process's child named comm.
func childProcess(comm string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// stat: pid (comm) state ppid ...
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if s[open+1:closing] == comm && len(fields) > 1 && fields[1] == strconv.Itoa(self) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child process %q", comm)
}

// StartAPIServer starts kube-apiserver again on the same address with the
// same certificates and users.
func (cp *ControlPlane) StartAPIServer() error { return cp.Env.ControlPlane.APIServer.Start() }

// Stop stops the control plane and removes its files.
func (cp *ControlPlane) Stop() error {
	err := cp.Env.Stop()
	if cp.dir != "" {
		_ = os.RemoveAll(cp.dir)
	}
	return err
}
