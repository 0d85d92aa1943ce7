package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

// notifyListener is the service manager's end of NOTIFY_SOCKET: it collects every datagram gaolerd
// sends, with the time it arrived.
type notifyListener struct {
	path string
	msgs chan notifyMsg
}

type notifyMsg struct {
	at    time.Time
	state string
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	l := &notifyListener{path: path, msgs: make(chan notifyMsg, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line != "" {
					l.msgs <- notifyMsg{time.Now(), line}
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return l
}

// expect waits for a message starting with prefix, returning it; other messages are passed to skip.
func (l *notifyListener) expect(t *testing.T, prefix string, timeout time.Duration, skip func(notifyMsg)) notifyMsg {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-l.msgs:
			if strings.HasPrefix(m.state, prefix) {
				return m
			}
			if skip != nil {
				skip(m)
			}
		case <-deadline:
			t.Fatalf("no %q from gaolerd within %v", prefix, timeout)
		}
	}
}

// TestNotifyProtocol runs gaolerd as systemd would run a Type=notify service with WatchdogSec=1s:
// READY=1 once it is up, WATCHDOG=1 every half second, RELOADING=1 then READY=1 around a SIGHUP
// reload, STOPPING=1 on SIGTERM, and exit status 0.
func TestNotifyProtocol(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	ns, _ := testenv.NetNS(t)
	cfg, _ := testConfig(t, "[jail.sshd]\nenabled = true\n")
	l := listenNotify(t)
	d := startDaemon(t, ns, cfg, "NOTIFY_SOCKET="+l.path, "WATCHDOG_USEC=1000000")

	ready := l.expect(t, "READY=1", 15*time.Second, nil)
	var pings []time.Time
	collect := func(m notifyMsg) {
		if m.state == "WATCHDOG=1" {
			pings = append(pings, m.at)
		}
	}
	// Watch the pings for 2.6 seconds: at WatchdogSec/2 = 500ms there should be about five.
	deadline := time.After(2600 * time.Millisecond)
watch:
	for {
		select {
		case m := <-l.msgs:
			collect(m)
		case <-deadline:
			break watch
		}
	}
	if len(pings) < 4 || len(pings) > 7 {
		t.Errorf("%d WATCHDOG=1 in 2.6s after READY (at %v), want about 5 (every 500ms)", len(pings), ready.at)
	}
	for i := 1; i < len(pings); i++ {
		if gap := pings[i].Sub(pings[i-1]); gap > 900*time.Millisecond {
			t.Errorf("WATCHDOG=1 gap of %v, want <= 500ms (+jitter)", gap)
		}
	}

	d.cmd.Process.Signal(syscall.SIGHUP)
	l.expect(t, "RELOADING=1", 5*time.Second, collect)
	l.expect(t, "READY=1", 5*time.Second, collect)

	d.cmd.Process.Signal(syscall.SIGTERM)
	l.expect(t, "STOPPING=1", 5*time.Second, collect)
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("gaolerd exit: %v, want status 0", err)
	}
}

// TestReloadKeepsState bans an address, leaves another one failure short of a ban, reloads with a
// changed config, and checks that the ban and the window survived; then reloads a broken config and
// checks that the old one keeps running (and keeps banning) while the error is logged with its line.
func TestReloadKeepsState(t *testing.T) {
	ns, d := runningDaemon(t, "[defaults]\nmaxretry = 3\nfindtime = \"1h\"\n\n[jail.sshd]\nenabled = true\n")
	cfg := d.cfg
	base := rand.IntN(0xffff)
	a := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:db8:77:%x::%x", base, i)) }
	fail := func(addr netip.Addr, times int) {
		var es []map[string]string
		for i := 0; i < times; i++ {
			es = append(es, sshdFailure(addr, "admin", 50000+i))
		}
		testenv.SendManyAs(t, "sshd", es, 0)
	}
	isBanned := func(addr netip.Addr) bool { return banned(setElements(t, ns, "sshd_v6"), addr) }
	waitBanned := func(addr netip.Addr, why string) {
		t.Helper()
		if !waitFor(10*time.Second, func() bool { return isBanned(addr) }) {
			t.Fatalf("%s not banned: %s\n%s", addr, why, d.output())
		}
	}

	fail(a(1), 3)
	fail(a(2), 2)
	waitBanned(a(1), "3 failures")
	time.Sleep(300 * time.Millisecond)

	// A good config with a longer bantime and a second jail: the state of sshd is kept.
	os.WriteFile(cfg, []byte(strings.Replace(mustRead(t, cfg), "maxretry = 3", "maxretry = 3\nbantime = \"2h\"", 1)), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	if !isBanned(a(1)) {
		t.Fatalf("ban of %s lost on reload", a(1))
	}
	fail(a(2), 1) // its third failure, two of them before the reload
	waitBanned(a(2), "the window of 2 failures before the reload was lost")

	// A broken config: logged with file and line, the old one keeps running.
	os.WriteFile(cfg, []byte(mustRead(t, cfg)+"\n[jail.sshd]\nmaxretry = \"many\"\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	fail(a(3), 3)
	waitBanned(a(3), "the running config stopped working after a broken reload")
	if !isBanned(a(1)) || !isBanned(a(2)) {
		t.Errorf("bans lost after a broken reload")
	}
	pid := strconv.Itoa(d.cmd.Process.Pid)
	var out []byte
	waitFor(5*time.Second, func() bool {
		out, _ = exec.Command("journalctl", "-q", "--no-pager", "-o", "cat", "MESSAGE_ID="+events.MsgConfigError, "_PID="+pid).Output()
		return len(out) > 0
	})
	if !strings.Contains(string(out), filepath.Base(cfg)+":") {
		t.Errorf("config error entry %q does not name the file and line", out)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("gaolerd exit: %v", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOwnEntriesNeverCount: gaolerd's own journal entries never reach a jail, even one whose
// matches and patterns would take them ("Failure from ADDR in jail ..." from a root process).
func TestOwnEntriesNeverCount(t *testing.T) {
	ns, d := runningDaemon(t, `
[defaults]
maxretry = 1

[jail.sshd]
enabled = true

[filter.echo]
journal_match = ["_UID=0"]
failregex = ['^Failure from <HOST> in jail \S+']

[jail.echo]
enabled = true
filter = "echo"
`)
	net := randomNet(t)
	x := netip.MustParseAddr(net + "::1")
	y := netip.MustParseAddr(net + "::2")
	testenv.SendAs(t, "sshd", sshdFailure(x, "root", 22))
	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, ns, "sshd_v6"), x) }) {
		t.Fatalf("%s not banned in sshd:\n%s", x, d.output())
	}
	// The control: the same text from another root process counts in the echo jail.
	testenv.SendAs(t, "echoer", map[string]string{"MESSAGE": fmt.Sprintf("Failure from %s in jail test", y)})
	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, ns, "echo_v6"), y) }) {
		t.Fatalf("control %s not banned in echo:\n%s", y, d.output())
	}
	if banned(setElements(t, ns, "echo_v6"), x) {
		t.Errorf("%s banned in the echo jail from gaolerd's own \"Failure from\" entry", x)
	}
}

// TestReloadChangesMatches: a reload that adds a jail with other journal matches re-opens the
// reader with the new matches, at the last processed entry, and the new jail bans.
func TestReloadChangesMatches(t *testing.T) {
	ns, d := runningDaemon(t, "[defaults]\nmaxretry = 2\n\n[jail.sshd]\nenabled = true\n")
	cfg := d.cfg
	os.WriteFile(cfg, []byte(mustRead(t, cfg)+`
[filter.myapp]
journal_match = ["_UID=0", "_COMM=myapp"]
failregex = ['^login failed from <HOST>$']

[jail.myapp]
enabled = true
filter = "myapp"
ports = ["8080"]
`), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	if !waitFor(10*time.Second, func() bool {
		_, err := testenv.NSRun(ns, "nft", "list", "set", "inet", "gaoler", "myapp_v4")
		return err == nil
	}) {
		t.Fatalf("reload did not add the myapp sets:\n%s", d.output())
	}
	addr := netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 10+rand.IntN(200)))
	testenv.SendManyAs(t, "myapp", []map[string]string{
		{"MESSAGE": "login failed from " + addr.String()},
		{"MESSAGE": "login failed from " + addr.String()},
	}, 0)
	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, ns, "myapp_v4"), addr) }) {
		t.Fatalf("%s not banned by the jail added on reload:\n%s", addr, d.output())
	}
}
