// Package harness runs Kakehi end to end on one machine without touching
// any network outside the test: a private network namespace, a real
// kube-apiserver and etcd (built by hack/build-control-plane.sh), backend
// "pods" as real HTTP servers on 198.18.x.y addresses, and the controller
// binary itself. The e2e tests and the demo both use it.
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// envInNetNS marks a process that was re-executed inside its own network
// namespace.
const envInNetNS = "KAKEHI_IN_NETNS"

// PodRange is the range from which test pods get addresses: 198.18.0.0/15 is
// reserved for benchmarking networks and accepted by EndpointSlice
// validation, unlike loopback. Inside the private namespace the whole range
// is local.
const PodRange = "198.18.0.0/15"

// APIServerAddr is the namespace-local address the API server advertises
// (kube-apiserver refuses to start with no default route and no
// non-loopback address).
const APIServerAddr = "198.18.0.1"

// PodIPv6 returns the IPv6 address of pod n (0–3) of IPv6 service s (0–3):
// fd00:198:18::<s><n> from a unique-local range, assigned in SetupNetNS.
func PodIPv6(s, n int) string { return fmt.Sprintf("fd00:198:18::%d%d", s+1, n+1) }

// InNetNS reports whether this process runs in the private namespace made by
// ReexecInNetNS.
func InNetNS() bool { return os.Getenv(envInNetNS) == "1" }

// ReexecInNetNS re-runs the current program with the same arguments inside a
// new network namespace (and a user namespace when not root), wired to the
// same stdio and extra files, and returns its exit code. The child sees
// InNetNS() == true and must call SetupNetNS.
func ReexecInNetNS(extra ...*os.File) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 1, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = extra
	cmd.Env = append(os.Environ(), envInNetNS+"=1")
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	cmd.SysProcAttr = attr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), nil
		}
		return 1, fmt.Errorf("re-exec in a network namespace: %w", err)
	}
	return 0, nil
}

// SetupNetNS brings up loopback in the private namespace, makes every
// address of PodRange local, and gives the API server its address. It
// refuses to run outside a namespace made by ReexecInNetNS, so it can never
// change the host's network.
func SetupNetNS() error {
	if !InNetNS() {
		return fmt.Errorf("SetupNetNS outside a private network namespace")
	}
	steps := [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", APIServerAddr + "/32", "dev", "lo"},
		{"route", "add", "local", PodRange, "dev", "lo"},
	}
	// IPv6 binds need assigned addresses: pod n of service s gets PodIPv6(s, n).
	for s := 0; s < 4; s++ {
		for n := 0; n < 4; n++ {
			steps = append(steps, []string{"-6", "addr", "add", PodIPv6(s, n) + "/128", "dev", "lo", "nodad"})
		}
	}
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	return nil
}
