package harness

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Controller is a running kakehi controller process.
type Controller struct {
	Cmd        *exec.Cmd
	HTTPAddr   string // proxy, host:port
	HTTPSAddr  string // TLS proxy, host:port (PortBase+3)
	HealthAddr string
	Metrics    string
	LogPath    string
	done       chan struct{}
	err        error
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// ControllerBinary builds cmd/controller once per process into .cache/bin
// (or returns $KAKEHI_BINARY when set) and returns the binary's path.
// RemoveControllerBinary deletes it when the process is done.
func ControllerBinary() (string, error) {
	if p := os.Getenv("KAKEHI_BINARY"); p != "" {
		return p, nil
	}
	buildOnce.Do(func() {
		dir := filepath.Join(RepoRoot(), ".cache", "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, fmt.Sprintf("kakehi-%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/controller")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/controller: %v: %s", err, out)
		}
	})
	return binPath, buildErr
}

// ControllerOptions configure StartController.
type ControllerOptions struct {
	Kubeconfig string
	IP         string   // address for all listeners (default 127.0.0.1)
	PortBase   int      // http=PortBase, health=+1, metrics=+2, https=+3 (default 8080)
	Args       []string // extra flags
	ExtraFiles []*os.File
	LogDir     string // where the process log goes (default .cache/logs)
}

// StartController starts the controller binary and waits until /readyz
// answers 200 (its first route table is published) or ctx ends.
func StartController(ctx context.Context, o ControllerOptions) (*Controller, error) {
	bin, err := ControllerBinary()
	if err != nil {
		return nil, err
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.PortBase == 0 {
		o.PortBase = 8080
	}
	c := &Controller{
		HTTPAddr:   fmt.Sprintf("%s:%d", o.IP, o.PortBase),
		HealthAddr: fmt.Sprintf("%s:%d", o.IP, o.PortBase+1),
		Metrics:    fmt.Sprintf("%s:%d", o.IP, o.PortBase+2),
		HTTPSAddr:  fmt.Sprintf("%s:%d", o.IP, o.PortBase+3),
		done:       make(chan struct{}),
	}
	args := []string{"--kubeconfig", o.Kubeconfig, "--http-addr", c.HTTPAddr,
		"--health-addr", c.HealthAddr, "--metrics-addr", c.Metrics, "--access-log", "", "--shutdown-delay", "0s"}
	if len(o.ExtraFiles) > 0 {
		args[3] = "fd:3"
	}
	args = append(args, "--https-addr", c.HTTPSAddr)
	c.Cmd = exec.Command(bin, append(args, o.Args...)...)
	c.Cmd.ExtraFiles = o.ExtraFiles
	if err := c.openLog(o.LogDir); err != nil {
		return nil, err
	}
	if err := c.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { c.err = c.Cmd.Wait(); close(c.done) }()
	if err := c.WaitReady(ctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w (log: %s)", err, c.LogPath)
	}
	return c, nil
}

func (c *Controller) openLog(dir string) error {
	if dir == "" {
		dir = filepath.Join(RepoRoot(), ".cache", "logs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(dir, "controller-*.log")
	if err != nil {
		return err
	}
	c.LogPath = f.Name()
	c.Cmd.Stdout, c.Cmd.Stderr = f, f
	return nil
}

// WaitReady polls /readyz until it answers 200, the process exits, or ctx
// ends.
func (c *Controller) WaitReady(ctx context.Context) error {
	url := "http://" + c.HealthAddr + "/readyz"
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller not ready: %w", ctx.Err())
		case <-c.done:
			return fmt.Errorf("controller exited before ready: %v", c.err)
		case <-tick.C:
		}
	}
}

// Signal sends sig to the process.
func (c *Controller) Signal(sig os.Signal) error { return c.Cmd.Process.Signal(sig) }

// Done is closed when the process has exited.
func (c *Controller) Done() <-chan struct{} { return c.done }

// Stop sends SIGTERM, waits up to 30 s, then kills the process.
func (c *Controller) Stop() {
	if c.Cmd.Process == nil {
		return
	}
	_ = c.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.Cmd.Process.Kill()
		<-c.done
	}
}

// Log returns the process's output so far.
func (c *Controller) Log() string {
	b, _ := os.ReadFile(c.LogPath)
	return string(b)
}

// RemoveControllerBinary deletes the binary that ControllerBinary built.
func RemoveControllerBinary() {
	if binPath != "" && os.Getenv("KAKEHI_BINARY") == "" {
		_ = os.Remove(binPath)
	}
}
