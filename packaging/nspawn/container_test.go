package nspawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// container is a Debian root booted with systemd-nspawn on an overlay of the cached root: systemd is
// its PID 1, with its own journald, system bus and network namespace (only lo).
type container struct {
	t      *testing.T // the test that booted it, for the cleanup
	merged string     // the overlay's merged directory, the container's /
	nspawn *exec.Cmd
	exited chan struct{} // closed when the current systemd-nspawn has exited
	log    string        // systemd-nspawn's output (the container's console)
	pid1   int           // the container's PID 1, as seen from the host
}

// boot mounts an overlay of root (upper and work directories in a temporary directory, so the cached
// root is never written to) and boots it with systemd-nspawn in the background. It returns once the
// container's PID 1 is systemd; t.Cleanup powers the container off and unmounts the overlay.
func boot(t *testing.T, root string) *container {
	t.Helper()
	dir := t.TempDir()
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", root, upper, work)
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay on %s: %v", merged, err)
	}
	c := &container{t: t, merged: merged, log: filepath.Join(dir, "nspawn.log")}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(c.shutdown)
	c.start(t)
	return c
}

// start boots the container with systemd-nspawn and waits until its systemd has finished starting
// units (the system state is running or degraded).
func (c *container) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(c.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	machine := fmt.Sprintf("gaoler-test-%d", os.Getpid())
	// --register=no and --keep-unit: no machined and no transient scope, so nothing is asked of the
	// host's service manager (there may be none). --private-network: the container has only lo, in
	// a network namespace of its own that goes with it (and so does its nftables ruleset).
	// gaolerd.service's IPAddressDeny= and IPAddressAllow= are BPF programs that systemd attaches to
	// the unit's cgroup: they need the bpf() system call, which nspawn's seccomp filter denies unless
	// told (--system-call-filter=bpf), and cgroup v2, which Debian 12 boots with and which nspawn
	// gives the container on a host with the hybrid layout too (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY).
	// Without them systemd runs the unit without its IP filter, and the tests would not see it.
	c.nspawn = exec.Command("systemd-nspawn", "--boot", "--register=no", "--keep-unit",
		"--private-network", "--system-call-filter=bpf", "--console=read-only", "--machine="+machine, "-D", c.merged)
	c.nspawn.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	c.nspawn.Stdout, c.nspawn.Stderr = logf, logf
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.pid1 = 0
	c.exited = make(chan struct{})
	if err := c.nspawn.Start(); err != nil {
		t.Fatalf("start systemd-nspawn: %v", err)
	}
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(c.nspawn, c.exited)

	deadline := time.Now().Add(30 * time.Second)
	for c.pid1 == 0 {
		if pid := c.findPID1(); pid != 0 {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "systemd" {
				c.pid1 = pid
				break
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("systemd-nspawn exited: %v\n%s", c.nspawn.ProcessState, c.console())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no systemd in the container after 30s\n%s", c.console())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// systemctl needs the manager's private socket, which PID 1 creates early in the boot.
	c.waitFor(t, 30*time.Second, "systemd's private socket", "test -S /run/systemd/private")
	state, err := c.exec(60*time.Second, "systemctl is-system-running --wait")
	state = strings.TrimSpace(state)
	if state != "running" && state != "degraded" {
		t.Fatalf("system state %q (%v)\n%s\n%s", state, err, c.diag("systemctl --failed --no-legend"), c.console())
	}
	if state == "degraded" {
		t.Logf("system degraded:\n%s", c.diag("systemctl --failed --no-legend"))
	}
}

// reboot powers the container off and boots it again on the same overlay: what was installed and
// written stays, what lived in memory (the network namespace with its nftables ruleset, /run) goes.
func (c *container) reboot(t *testing.T) {
	t.Helper()
	c.exec(10*time.Second, "systemctl --no-block poweroff")
	if !c.waitExit(30 * time.Second) {
		t.Fatalf("container still running 30s after poweroff\n%s", c.console())
	}
	c.start(t)
}

// findPID1 returns the host PID of the container's init: the descendant of systemd-nspawn whose PID
// in its own (innermost) PID namespace is 1. It returns 0 if there is none yet.
func (c *container) findPID1() int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		nspid := statusField(string(status), "NSpid")
		if len(nspid) < 2 || nspid[len(nspid)-1] != "1" {
			continue
		}
		if c.descends(pid) {
			return pid
		}
	}
	return 0
}

// descends reports whether pid is systemd-nspawn's descendant.
func (c *container) descends(pid int) bool {
	for i := 0; i < 16 && pid > 1; i++ {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return false
		}
		ppid := statusField(string(status), "PPid")
		if len(ppid) != 1 {
			return false
		}
		pid, _ = strconv.Atoi(ppid[0])
		if pid == c.nspawn.Process.Pid {
			return true
		}
	}
	return false
}

// statusField returns the whitespace-separated values of a /proc/PID/status line.
func statusField(status, name string) []string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.Fields(v)
		}
	}
	return nil
}

// console returns the tail of systemd-nspawn's output.
func (c *container) console() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return "--- systemd-nspawn output ---\n" + string(b)
}

// exec runs a shell script inside the container (all of PID 1's namespaces, its root and working
// directory, a clean environment) and returns its combined output and error; the script is killed
// after timeout. The root is given explicitly (-r): where the test itself runs in a chroot, entering
// the mount namespace alone leaves the script at the namespace's root, which is the host's.
func (c *container) exec(timeout time.Duration, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.pid1), "-a", "-r", "-w", "--",
		"/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LANG=C.UTF-8", "TERM=dumb", "DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=",
		"SYSTEMD_COLORS=0", "/bin/sh", "-c", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return out.String(), err
}

// run is exec that fails the test on error.
func (c *container) run(t *testing.T, timeout time.Duration, script string) string {
	t.Helper()
	out, err := c.exec(timeout, script)
	if err != nil {
		t.Fatalf("in the container: %s: %v\n%s", script, err, out)
	}
	return out
}

// waitFor runs script every interval until it succeeds and returns its output; it fails the test
// after timeout.
func (c *container) waitFor(t *testing.T, timeout time.Duration, what, script string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := c.exec(10*time.Second, script)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s: %v\n%s", what, timeout, script, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shutdown powers the container off (systemctl poweroff, then SIGTERM to systemd-nspawn, which asks
// the container's systemd to halt, then SIGKILL to the container's PID 1 and to systemd-nspawn), and
// unmounts the overlay.
func (c *container) shutdown() {
	if c.nspawn != nil && c.nspawn.Process != nil {
		start := time.Now()
		if c.pid1 != 0 {
			c.exec(5*time.Second, "systemctl --no-block poweroff")
		}
		stopped := c.waitExit(20 * time.Second)
		if !stopped {
			c.t.Logf("container still running 20s after poweroff; SIGTERM to systemd-nspawn")
			c.nspawn.Process.Signal(syscall.SIGTERM)
			stopped = c.waitExit(10 * time.Second)
		}
		if !stopped {
			c.t.Errorf("container still running after SIGTERM; SIGKILL")
			if c.pid1 != 0 {
				syscall.Kill(c.pid1, syscall.SIGKILL)
			}
			syscall.Kill(-c.nspawn.Process.Pid, syscall.SIGKILL)
			if !c.waitExit(10 * time.Second) {
				c.t.Errorf("systemd-nspawn %d did not exit after SIGKILL", c.nspawn.Process.Pid)
			}
		}
		c.t.Logf("timing: container shutdown %v", time.Since(start).Round(time.Millisecond))
	}
	if err := unmount(c.merged); err != nil {
		c.t.Errorf("unmount %s: %v", c.merged, err)
	}
}

// waitExit waits up to d for systemd-nspawn to exit.
func (c *container) waitExit(d time.Duration) bool {
	select {
	case <-c.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// unmount unmounts the overlay, retrying while it is busy, and detaches it lazily as a last resort.
func unmount(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = syscall.Unmount(dir, 0); err == nil || errors.Is(err, syscall.EINVAL) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lerr := syscall.Unmount(dir, syscall.MNT_DETACH); lerr != nil {
		return lerr
	}
	return fmt.Errorf("busy for 5s, detached lazily: %w", err)
}
