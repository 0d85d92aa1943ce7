package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

// backendOf serves a fakeDaemon as a bus.Backend.
type backendOf struct{ f *fakeDaemon }

func (b backendOf) Version() string                        { v, _ := b.f.Version(); return v }
func (b backendOf) Reader() string                         { r, _ := b.f.Reader(); return r }
func (b backendOf) JailNames() []string                    { j, _ := b.f.Jails(); return j }
func (b backendOf) Jail(name string) (bus.JailInfo, error) { return b.f.Jail(name) }
func (b backendOf) Ban(jail, address string, seconds uint64) (bus.BanInfo, error) {
	info, err := b.f.Ban(jail, address, seconds)
	var re *bus.RemoteError
	if errors.As(err, &re) && re.Name == "io.github.gaoler.Gaoler1.Error.InvalidAddress" {
		err = refusal(re.Message) // as the daemon refuses: InvalidAddress, with the message as it is
	}
	return info, err
}

// refusal is a refused ban as the daemon returns it to the bus server.
type refusal string

func (r refusal) Error() string                                     { return string(r) }
func (r refusal) Is(target error) bool                              { return target == bus.ErrInvalidAddress }
func (b backendOf) Unban(jail, address string) (bus.BanInfo, error) { return b.f.Unban(jail, address) }
func (b backendOf) UnbanAll(jail string) (uint32, error)            { return b.f.UnbanAll(jail) }
func (b backendOf) ListBans(jail string) ([]bus.BanInfo, error)     { return b.f.ListBans(jail) }
func (b backendOf) Reload() error                                   { return b.f.Reload() }
func (b backendOf) Metrics() (string, error)                        { return b.f.Metrics() }

// serveFake serves a fake daemon's API on the bus at addr until the test ends; the server sends its
// signals.
func serveFake(t *testing.T, addr string) (*fakeDaemon, *bus.Server) {
	fake := newFakeDaemon()
	s := bus.NewServer(backendOf{fake})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx, func() (*dbus.Conn, error) { return dbus.Connect(addr) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return fake, s
}

// runReal runs gaoler with the real bus client, on the system bus that DBUS_SYSTEM_BUS_ADDRESS names.
func runReal(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	e := &env{
		stdout: &out, stderr: &errOut,
		dial:   func() (api, error) { return bus.Dial() },
		events: func(string, int) ([]string, error) { return nil, nil },
		now:    func() time.Time { return now },
		loc:    time.UTC,
	}
	code = e.run(args)
	return code, out.String(), errOut.String()
}

func TestRealBus(t *testing.T) {
	testenv.RequireRoot(t)
	addr := testenv.SystemBus(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)

	code, _, stderr := runReal("status")
	if want := "gaoler: daemon not running (no owner of io.github.gaoler.Gaoler1 on the system bus)\n"; code != 1 || stderr != want {
		t.Errorf("status without a daemon: exit %d, stderr %q; want 1, %q", code, stderr, want)
	}

	serveFake(t, addr)

	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, _ = runReal("status")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range []string{"status", "status-jail-no-events", "banned", "banned-json", "ban", "unban-not-banned",
		"trusted", "ban-trusted", "untrust-not-trusted", "ban-mapped", "ban-lockout", "ban-host-bits"} {
		args := map[string]string{
			"status":                "status",
			"status-jail-no-events": "status nginx-auth",
			"banned":                "banned",
			"banned-json":           "banned --json",
			"ban":                   "ban sshd 192.0.2.9 --for 1h30m",
			"unban-not-banned":      "unban sshd 198.51.100.1",
			"trusted":               "trusted",
			"ban-trusted":           "ban sshd 192.0.2.10 --for 1h",
			"untrust-not-trusted":   "untrust sshd 198.51.100.1",
			"ban-mapped":            "ban sshd ::ffff:192.0.2.9 --for 1h",
			"ban-lockout":           "ban sshd 0.0.0.0/0",
			"ban-host-bits":         "ban sshd 127.0.0.0/7 --for 1h",
		}[name]
		code, stdout, stderr := runReal(strings.Fields(args)...)
		// The status overview has no events here; the others are the same as with the fake client.
		if name == "status" {
			if !strings.Contains(stdout, "`- Jail list:\tnginx-auth, sshd\n") || code != 0 {
				t.Errorf("status over the bus: exit %d\n%s%s", code, stdout, stderr)
			}
			continue
		}
		testenv.Golden(t, name+".golden", transcript(args, code, stdout, stderr))
	}
}

// TestAsNobody runs the built gaoler as an unprivileged user against a private bus holding the policy:
// reading works, changing is refused with one line and exit code 1.
func TestAsNobody(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "runuser")
	goCmd := testenv.RequireCommand(t, "go")
	addr := testenv.SystemBus(t)

	dir, err := os.MkdirTemp("", "gaoler-client-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gaoler")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	fake, server := serveFake(t, addr)

	nobody := func(args ...string) (int, string) {
		cmd := exec.Command("runuser", append([]string{"-u", "nobody", "--", bin}, args...)...)
		cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr, "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := nobody("status", "sshd")
		if code == 0 {
			if !strings.Contains(out, "`- Banned IP list:\t192.0.2.7 2001:db8::/64") {
				t.Errorf("status sshd as nobody:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status sshd as nobody: exit %d: %s", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, out := nobody("banned", "--json"); code != 0 || !strings.Contains(out, `"address": "192.0.2.7"`) {
		t.Errorf("banned --json as nobody: exit %d: %s", code, out)
	}
	for _, args := range [][]string{
		{"unban", "sshd", "192.0.2.7"},
		{"ban", "sshd", "192.0.2.9", "--for", "1m"},
		{"unban", "--all"},
		{"reload"},
	} {
		code, out := nobody(args...)
		want := "gaoler: permission denied: only root may change bans or reload\n"
		if code != 1 || out != want {
			t.Errorf("%s as nobody: exit %d, %q; want 1, %q", strings.Join(args, " "), code, out, want)
		}
	}
	if len(fake.calls) != 0 {
		t.Errorf("refused calls reached the daemon: %v", fake.calls)
	}

	// Anyone may watch the bans as they happen: the signals reach an unprivileged subscriber.
	// Started as nobody without runuser, so that SIGTERM reaches gaoler itself, which then exits 0.
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	watch := exec.Command(bin, "watch", "--json")
	watch.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	watch.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr)
	out, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Process.Kill(); watch.Wait() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	ev := events.Event{Kind: events.Ban, Jail: "sshd", Prefix: netip.MustParsePrefix("2001:db8:77::/64"), Count: 1,
		BannedAt: now, Expires: now.Add(time.Hour), Origin: events.Origin{Kind: events.OriginPeer, Peer: "h1"}}
	ev.BanOrigin = ev.Origin
	tick := time.NewTicker(100 * time.Millisecond) // until the watcher has subscribed
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case <-tick.C:
			server.Announce(ev)
		case line, ok := <-lines:
			if !ok {
				t.Fatal("gaoler watch as nobody ended before any ban")
			}
			if !strings.Contains(line, `"prefix":"2001:db8:77::/64"`) || !strings.Contains(line, `"origin":"peer","peer":"h1"`) {
				t.Fatalf("gaoler watch as nobody printed %s", line)
			}
			got = true
		case <-timeout:
			t.Fatal("gaoler watch as nobody printed no ban within 10s")
		}
	}
	watch.Process.Signal(syscall.SIGTERM)
	if err := watch.Wait(); err != nil {
		t.Errorf("gaoler watch after SIGTERM: %v", err)
	}
}
