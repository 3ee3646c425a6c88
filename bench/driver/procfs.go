package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 on every architecture Kakehi targets.
const clockTick = 10 * time.Millisecond

// CPUs used: the backend, wrk, the control plane and this driver share
// loadCPU; the proxy under test is alone on proxyCPU.
const (
	loadCPU  = 0
	proxyCPU = 1
)

// proc is a child process started in its own process group, so that it
// and everything it forks (nginx's worker) stop together.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// startProc starts argv with its output in a log file under dir. The
// process dies with the driver (Pdeathsig) and gets its own process group.
func startProc(dir, name string, argv ...string) (*proc, error) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: f.Name(), done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// pid returns the process id of the started command.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, with its log's tail.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v): %s", p.name, p.err, tailFile(p.logPath, 1500))
	default:
		return nil
	}
}

// stop sends sig, waits up to grace, then kills the whole process group.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	pgid := p.pid()
	_ = syscall.Kill(pgid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Whatever the leader left behind in its group (a worker) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// procStat is what the driver reads from /proc/PID/stat.
type procStat struct {
	PPID  int
	Ticks int64 // utime + stime, in clockTick units, over all threads
}

// parseStat parses the contents of /proc/PID/stat. The command name may
// hold spaces and parentheses, so fields are counted after the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("malformed stat: %d fields after the name", len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("malformed stat: %w", err)
	}
	return procStat{PPID: ppid, Ticks: ut + st}, nil
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// cpuTime returns the CPU time (user + system) that pids have used so far.
func cpuTime(pids []int) (time.Duration, error) {
	var ticks int64
	for _, pid := range pids {
		st, err := readStat(pid)
		if err != nil {
			return 0, err
		}
		ticks += st.Ticks
	}
	return time.Duration(ticks) * clockTick, nil
}

// statusField returns the value of one "Name:\tvalue" line of
// /proc/PID/status.
func statusField(pid int, name string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("/proc/%d/status has no %s", pid, name)
}

// rssKiB returns the summed resident set size (VmRSS) of pids in KiB.
func rssKiB(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		v, err := statusField(pid, "VmRSS")
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", v, err)
		}
		total += n
	}
	return total, nil
}

// children returns the processes whose parent is pid, by scanning /proc.
func children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(n); err == nil && st.PPID == pid {
			out = append(out, n)
		}
	}
	return out
}

// pinSelf pins every thread of this process to cpu; threads created later
// and child processes inherit the mask.
func pinSelf(cpu int) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %v: %s", err, out)
	}
	return nil
}

// raiseNoFile raises the soft limit on open files to the hard limit and
// returns it; children inherit it.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// cpuStat is one "cpuN" line of /proc/stat, in clock ticks. Busy is time
// in tasks (user, nice, system) and IRQ the time accounted to interrupts
// (zero-ish on kernels without CONFIG_IRQ_TIME_ACCOUNTING, where it is
// charged to the interrupted task instead).
type cpuStat struct {
	Busy, IRQ, Idle, Steal int64
}

// parseCPUStat returns the line of /proc/stat for cpu.
func parseCPUStat(b []byte, cpu int) (cpuStat, error) {
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		var v [8]int64
		for i := 0; i < len(v) && i < len(f); i++ {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return cpuStat{}, fmt.Errorf("/proc/stat %s: %w", prefix, err)
			}
			v[i] = n
		}
		// user nice system idle iowait irq softirq steal
		return cpuStat{
			Busy:  v[0] + v[1] + v[2],
			IRQ:   v[5] + v[6],
			Idle:  v[3] + v[4],
			Steal: v[7],
		}, nil
	}
	return cpuStat{}, fmt.Errorf("/proc/stat has no line for cpu%d", cpu)
}

func readCPUStat(cpu int) (cpuStat, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}, err
	}
	return parseCPUStat(b, cpu)
}

// tailFile returns the last n bytes of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
