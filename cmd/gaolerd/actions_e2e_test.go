package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

var (
	clientOnce sync.Once
	clientBin  string
	clientErr  error
)

// gaolerClient builds the gaoler client once per test process and returns its path.
func gaolerClient(t testing.TB) string {
	t.Helper()
	clientOnce.Do(func() {
		clientBin = filepath.Join(binaries(t), "gaoler")
		if out, err := exec.Command("go", "build", "-o", clientBin, "github.com/gaoler/gaoler/cmd/gaoler").CombinedOutput(); err != nil {
			clientErr = fmt.Errorf("go build gaoler: %v\n%s", err, out)
		}
	})
	if clientErr != nil {
		t.Fatal(clientErr)
	}
	return clientBin
}

// TestHangingActionDelaysNoBan: an exec action that hangs holds its own queue only. While it hangs,
// each new offender is in the kernel within a second or two of its failures (the action's timeout is
// 4 s, so a ban that waited for it would be late), another action runs for every ban with the event's
// JSON on stdin, and at the timeout the hung program's whole process group is killed.
func TestHangingActionDelaysNoBan(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	got := filepath.Join(dir, "got")
	os.Mkdir(got, 0o755)
	ns, d := runningDaemon(t, fmt.Sprintf(`
[defaults]
maxretry = 2
findtime = "1m"
bantime = "1h"

[jail.sshd]
enabled = true
actions = ["hang", "record"]

[action.hang]
type = "exec"
command = ["/bin/sh", "-c", "echo $$ >> \"$0\"; sleep 300 & echo $! >> \"$0\"; wait", %q]
timeout = "4s"

# The record appears under its name once whole (written aside, then renamed): the test reads it as
# soon as it exists, and under load cat may not have written anything yet when it is created.
[action.record]
type = "exec"
command = ["/bin/sh", "-c", "cat > \"$0/.$1\" && mv \"$0/.$1\" \"$0/$1\"", %q, "{address}"]
`, pids, got))
	net := randomNet(t)
	isBanned := func(a netip.Addr) bool { return banned(setElements(t, ns, "sshd_v6"), a) }
	for i := 1; i <= 4; i++ {
		a := netip.MustParseAddr(fmt.Sprintf("%s::%x", net, i))
		start := time.Now()
		testenv.SendManyAs(t, "sshd", []map[string]string{sshdFailure(a, "root", 4000+i), sshdFailure(a, "root", 5000+i)}, 0)
		if !waitFor(10*time.Second, func() bool { return isBanned(a) }) {
			t.Fatalf("%s not banned:\n%s", a, d.output())
		}
		// The first ban starts the hang (and may wait for the daemon's first catch-up); the later ones
		// come while it hangs.
		if took := time.Since(start); i > 1 && took > 3*time.Second {
			t.Errorf("ban %d of %s reached the kernel %v after its failures, behind a hanging action (timeout 4s)", i, a, took)
		}
		if !waitFor(10*time.Second, func() bool { _, err := os.Stat(filepath.Join(got, a.String())); return err == nil }) {
			t.Fatalf("the record action did not run for %s while the other hangs", a)
		}
		var p struct {
			Event, Jail, Address, Origin string
			Entries                      []struct{ Message string }
		}
		raw, _ := os.ReadFile(filepath.Join(got, a.String()))
		if err := json.Unmarshal(raw, &p); err != nil || p.Event != "ban" || p.Jail != "sshd" || p.Address != a.String() || p.Origin != "filter" ||
			len(p.Entries) == 0 || !strings.Contains(p.Entries[len(p.Entries)-1].Message, "Failed password for root from "+a.String()) {
			t.Fatalf("record action's stdin for %s: %s (%v)", a, raw, err)
		}
	}
	// The first run was killed at its 4 s timeout, with its child: no process of its group is left.
	// (Later runs, for the later bans, may still be hanging.)
	raw, _ := os.ReadFile(pids)
	first := strings.Fields(string(raw))
	if len(first) < 2 {
		t.Fatalf("the hang action wrote %q", raw)
	}
	for _, f := range first[:2] {
		pid, _ := strconv.Atoi(f)
		if !waitFor(10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
			t.Fatalf("process %d of the first hung run still runs after its timeout", pid)
		}
	}
	// ... and said so in the journal, as a timed-out action (its own MESSAGE_ID).
	var out []byte
	if !waitFor(10*time.Second, func() bool {
		out, _ = exec.Command("journalctl", "-o", "cat", "MESSAGE_ID="+events.MsgActionTimedOut,
			"_PID="+strconv.Itoa(d.cmd.Process.Pid), "GAOLER_ACTION=hang").CombinedOutput()
		return strings.Contains(string(out), "Action hang (exec) timed out after 4s")
	}) {
		t.Fatalf("no timed-out entry of the hang action in the journal: %s", out)
	}
}

// TestWhyShowsTheSSHDLines: after real sshd failures ban an attacker, `gaoler why` shows the ban with
// the sshd lines behind it (the engine keeps the one that made the ban); a manual ban says the
// caller's uid, and once lifted it is shown as a recent ban that ended.
func TestWhyShowsTheSSHDLines(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	testenv.RequireCommand(t, "sshpass")
	testenv.RequireCommand(t, "ssh")
	testenv.RequireCommand(t, "nft")
	client := gaolerClient(t)
	sysbus := testenv.SystemBus(t)

	pair := testenv.NetNSPair(t)
	n := 10 + rand.IntN(240)
	atk := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x:%x", rand.IntN(0xffff), n))
	testenv.NSExec(t, pair.Attacker, "ip", "addr", "add", atk.String()+"/64", "dev", "veth0", "nodad")
	startSSHD(t, pair, t.TempDir(), "")
	cfg, _ := testConfig(t, "[defaults]\nmaxretry = 3\n\n[jail.sshd]\nenabled = true\n")
	gd := startDaemon(t, pair.Server, cfg, "DBUS_SYSTEM_BUS_ADDRESS="+sysbus)
	gd.waitReady(t, pair.Server)

	user := fmt.Sprintf("why%d", rand.IntN(1e6))
	for i := 0; i < 3; i++ {
		exec.Command("ip", "netns", "exec", pair.Attacker, "timeout", "10", "sshpass", "-p", "wrong-password",
			"ssh", "-q", "-b", atk.String(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
			"-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=3", user+"@"+pair.ServerV6.String(), "true").Run()
	}
	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, pair.Server, "sshd_v6"), atk) }) {
		t.Fatalf("%s not banned after 3 failed logins:\n%s", atk, gd.output())
	}
	gaoler := func(args ...string) (string, error) {
		cmd := exec.Command(client, args...)
		cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+sysbus, "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var out string
	var err error
	if !waitFor(15*time.Second, func() bool { out, err = gaoler("why", atk.String(), "--json"); return err == nil }) {
		t.Fatalf("gaoler why: %v: %s", err, out)
	}
	var r bus.WhyReply
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("gaoler why --json: %v: %s", err, out)
	}
	if len(r.Bans) != 1 || !r.Bans[0].Active || r.Bans[0].Jail != "sshd" || r.Bans[0].Origin != "filter" || r.Bans[0].Rule == "" {
		t.Fatalf("gaoler why --json: %s", out)
	}
	lines := 0
	for _, e := range r.Bans[0].Entries {
		if strings.Contains(e.Message, user) && strings.Contains(e.Message, atk.String()) && e.Cursor != "" && !e.Time.IsZero() {
			lines++
		}
	}
	if lines == 0 {
		t.Fatalf("gaoler why shows none of the sshd lines of %s as %s: %s", atk, user, out)
	}
	text, err := gaoler("why", atk.String())
	if err != nil || !strings.Contains(text, "is banned in jail sshd") || !strings.Contains(text, "user "+user) {
		t.Fatalf("gaoler why: %v:\n%s", err, text)
	}

	manual := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x:%x", rand.IntN(0xffff), n+1))
	if out, err := gaoler("ban", "sshd", manual.String(), "--for", "10m"); err != nil {
		t.Fatalf("gaoler ban: %v: %s", err, out)
	}
	text, err = gaoler("why", manual.String())
	if err != nil || !strings.Contains(text, "a manual ban by uid 0") {
		t.Fatalf("gaoler why of a manual ban: %v:\n%s", err, text)
	}
	if out, err := gaoler("unban", "sshd", manual.String()); err != nil {
		t.Fatalf("gaoler unban: %v: %s", err, out)
	}
	if !waitFor(10*time.Second, func() bool {
		text, err = gaoler("why", manual.String())
		return err == nil && strings.Contains(text, "was banned in jail sshd") && strings.Contains(text, "manual)")
	}) {
		t.Fatalf("gaoler why after the unban: %v:\n%s", err, text)
	}

	// A restart forgets neither: the running ban with its sshd lines, and the lifted one, come back
	// from the checkpoint.
	if err := gd.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("gaolerd's stop: %v\n%s", err, gd.output())
	}
	gd = startDaemon(t, pair.Server, cfg, "DBUS_SYSTEM_BUS_ADDRESS="+sysbus)
	gd.waitReady(t, pair.Server)
	if !waitFor(15*time.Second, func() bool {
		text, err = gaoler("why", manual.String())
		return err == nil
	}) || !strings.Contains(text, "was banned in jail sshd") || !strings.Contains(text, "manual)") {
		t.Fatalf("gaoler why after the unban and a restart: %v:\n%s", err, text)
	}
	out, err = gaoler("why", atk.String(), "--json")
	var again bus.WhyReply
	if err != nil || json.Unmarshal([]byte(out), &again) != nil || len(again.Bans) != 1 || !again.Bans[0].Active ||
		!sameLines(again.Bans[0].Entries, r.Bans[0].Entries) {
		t.Fatalf("gaoler why --json after a restart: %v:\n%s\nbefore:\n%+v", err, out, r.Bans)
	}
}

// sameLines reports whether a and b are the same journal entries.
func sameLines(a, b []bus.WhyLine) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Time.Equal(b[i].Time) || a[i].Cursor != b[i].Cursor || a[i].Message != b[i].Message || a[i].PID != b[i].PID {
			return false
		}
	}
	return true
}

// TestMailFromGaolerd: a ban from sshd failures reaches the admin's Maildir through a real SMTP server
// (Debian's aiosmtpd) in the daemon's namespace, with the failure line and a whois section from a
// hostile whois server there, cleaned.
func TestMailFromGaolerd(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	testenv.RequireCommand(t, "nft")
	_, err := os.Stat("/usr/lib/python3/dist-packages/aiosmtpd")
	testenv.Require(t, err == nil, "needs python3-aiosmtpd (scripts/deps.sh installs it)")
	ns, _ := testenv.NetNS(t)
	maildir := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"tmp", "new", "cur"} {
		os.MkdirAll(filepath.Join(maildir, d), 0o700)
	}
	smtpd := exec.Command("ip", "netns", "exec", ns, "/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:2525",
		"-c", "aiosmtpd.handlers.Mailbox", maildir)
	if err := smtpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpd.Process.Kill(); smtpd.Wait() })
	var whois net.Listener
	testenv.InNetNS(t, ns, func() {
		if whois, err = net.Listen("tcp", "127.0.0.1:4343"); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { whois.Close() })
	go func() {
		for {
			c, err := whois.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 256))
			c.Write([]byte("netname:\x1b[31mDOC-NET\x1b[0m\r\n\n~! touch /tmp/gaoler-pwned\r\ndescr: \x00doc\r\n"))
			c.Close()
		}
	}()
	if !waitFor(20*time.Second, func() bool { _, err := testenv.NSRun(ns, "bash", "-c", "</dev/tcp/127.0.0.1/2525"); return err == nil }) {
		t.Fatal("aiosmtpd did not start in the namespace")
	}
	cfg, _ := testConfig(t, `
[defaults]
maxretry = 2
findtime = "1m"

[jail.sshd]
enabled = true
actions = ["mail"]

[action.mail]
type = "mail"
to = ["admin@example.org"]
from = "gaoler@host.example.org"
smtp = "127.0.0.1:2525"
whois_server = "127.0.0.1:4343"
digest = "0"
`)
	d := startDaemon(t, ns, cfg)
	d.waitReady(t, ns)
	a := netip.MustParseAddr(randomNet(t) + "::7")
	testenv.SendManyAs(t, "sshd", []map[string]string{sshdFailure(a, "mallory", 4001), sshdFailure(a, "mallory", 4002)}, 0)
	var mail string
	if !waitFor(30*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			if strings.Contains(string(raw), "banned "+a.String()) {
				mail = string(raw)
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no mail about %s in %s:\n%s", a, maildir, d.output())
	}
	for _, want := range []string{
		"Subject: [gaoler] sshd: banned " + a.String() + " on ",
		"From: gaoler@host.example.org",
		"Failed password for mallory from " + a.String() + " port 4002 ssh2",
		"  netname:DOC-NET",
		"  ~! touch /tmp/gaoler-pwned",
		"  descr: doc",
	} {
		if !strings.Contains(mail, want) {
			t.Errorf("mail lacks %q:\n%s", want, mail)
		}
	}
	if strings.ContainsAny(mail, "\x1b\x00") {
		t.Errorf("mail holds escape or NUL bytes:\n%q", mail)
	}
}
