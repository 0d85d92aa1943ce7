package testenv

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// policyFile is gaoler's D-Bus policy, relative to the module root.
const policyFile = "packaging/dbus/io.github.gaoler.Gaoler1.conf"

// busConfigFile is the template of the private bus's configuration, shared with the demo.
const busConfigFile = "scripts/private-system-bus.conf"

// Bus is a private dbus-daemon configured as a system bus (type system, EXTERNAL auth, the default
// policy of Debian's system.conf) that includes gaoler's own policy file. Its socket lives in a
// directory every user can reach, so tests can call it as nobody.
type Bus struct {
	t       testing.TB
	dir     string
	socket  string
	cmd     *exec.Cmd
	waitErr chan error
}

// SystemBus starts a private system bus for the test and returns its address
// ("unix:path=/tmp/.../system_bus_socket"); the bus is stopped in t.Cleanup.
func SystemBus(t testing.TB) string {
	t.Helper()
	return StartBus(t).Address()
}

// StartBus starts a private system bus as SystemBus does and returns it, for tests that stop and
// restart the bus. Each extra string is added to the bus's configuration as it is, such as
// "<servicedir>/path</servicedir>".
func StartBus(t testing.TB, extra ...string) *Bus {
	t.Helper()
	RequireCommand(t, "dbus-daemon")
	policy, err := moduleFile(policyFile)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	tmpl, err := moduleFile(busConfigFile)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	template, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its parents are 0700, and the socket must be reachable by other users.
	dir, err := os.MkdirTemp("", "gaoler-dbus-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &Bus{t: t, dir: dir, socket: filepath.Join(dir, "system_bus_socket")}
	conf := strings.NewReplacer("@SOCKET@", b.socket, "@POLICY@", policy,
		"@EXTRA@", strings.Join(extra, "\n  ")).Replace(string(template))
	if err := os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Stop()
		os.RemoveAll(dir)
	})
	b.Start()
	return b
}

// Address returns the bus's address, the same across restarts.
func (b *Bus) Address() string { return "unix:path=" + b.socket }

// Socket returns the path of the bus's socket.
func (b *Bus) Socket() string { return b.socket }

// Start starts the dbus-daemon (again, after Stop) and waits until it accepts connections.
func (b *Bus) Start() {
	b.t.Helper()
	if b.cmd != nil {
		b.t.Fatal("testenv: bus already running")
	}
	os.Remove(b.socket)
	cmd := exec.Command("dbus-daemon", "--config-file="+filepath.Join(b.dir, "bus.conf"), "--nofork",
		"--nopidfile", "--nosyslog", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("testenv: start dbus-daemon: %v", err)
	}
	b.cmd = cmd
	b.waitErr = make(chan error, 1)
	printed := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		printed <- line
		b.waitErr <- cmd.Wait()
	}()
	select {
	case <-printed:
	case <-time.After(10 * time.Second):
		b.Stop()
		b.t.Fatalf("testenv: dbus-daemon did not start: %s", stderr.String())
	}
	// The address is printed once the socket listens; check it anyway.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("unix", b.socket)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Stop()
			b.t.Fatalf("testenv: dbus-daemon socket: %v: %s", err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Chmod(b.socket, 0o666); err != nil {
		b.t.Fatal(err)
	}
}

// Stop kills the dbus-daemon (SIGKILL, as a crash would) and waits for it to exit. It does nothing
// when the bus is not running.
func (b *Bus) Stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-b.waitErr:
	case <-time.After(10 * time.Second):
		b.t.Errorf("testenv: dbus-daemon %d did not exit", b.cmd.Process.Pid)
	}
	b.cmd = nil
}

// moduleFile returns the absolute path of rel, a file of the repository, found from the working
// directory up to the module root (the directory holding go.mod).
func moduleFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, rel)
			if _, err := os.Stat(p); err != nil {
				return "", err
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
