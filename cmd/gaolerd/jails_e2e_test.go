package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// randomNet returns a random /64 inside 2001:db8::/32, so that what earlier runs left in the journal
// cannot meet this run's addresses.
func randomNet(t *testing.T) string {
	return fmt.Sprintf("2001:db8:%x:%x", rand.IntN(0xffff), rand.IntN(0xffff))
}

// spreadAddr returns the i-th of many IPv6 addresses, each in a /64 of its own (more than
// ipv6_subnet_limit failing addresses of one /64 would ban the /64) under a random /48.
func spreadAddr(site uint16, i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("2001:db8:%x:%x::1", site, i+1))
}

// TestForgedEntriesBanNobody checks the trust rule through the real journald: a failure counts only
// when journald itself says it comes from root's sshd. An unprivileged user's `logger -t sshd` bans
// nobody; a user name crafted to contain "from ADDR port 22" never bans ADDR. The entries of a root
// process named sshd, sent afterwards, are the control. (Root's own `logger -t sshd` is not tried
// here: logger exits at once, and when journald misses its _COMM the entry is root's with identifier
// sshd and no process fields, which the sshd match trusts; TestLostMetadataTrusted covers both
// shapes deterministically on journal files.)
func TestForgedEntriesBanNobody(t *testing.T) {
	ns, d := runningDaemon(t, "[defaults]\nmaxretry = 2\n\n[jail.sshd]\nenabled = true\n")
	testenv.RequireCommand(t, "logger")
	testenv.RequireCommand(t, "runuser")
	net := randomNet(t)
	victimNobody := netip.MustParseAddr(net + "::1")
	victimInjected := netip.MustParseAddr(net + "::3")
	attacker := netip.MustParseAddr(net + "::4")
	control := netip.MustParseAddr(net + "::5")

	for i := 0; i < 4; i++ {
		msg := fmt.Sprintf("Failed password for root from %s port 22 ssh2", victimNobody)
		if out, err := exec.Command("runuser", "-u", "nobody", "--", "logger", "-t", "sshd", msg).CombinedOutput(); err != nil {
			t.Fatalf("logger as nobody: %v: %s", err, out)
		}
	}
	// sshd writes the user name verbatim: "ssh -l 'x from VICTIM port 22' server".
	var injected []map[string]string
	for i := 0; i < 4; i++ {
		e := sshdFailure(attacker, fmt.Sprintf("invalid user x from %s port 22", victimInjected), 1000+i)
		injected = append(injected, e)
	}
	testenv.SendManyAs(t, "sshd", injected, 0)
	testenv.SendManyAs(t, "sshd", []map[string]string{sshdFailure(control, "root", 1), sshdFailure(control, "root", 2)}, 0)

	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, ns, "sshd_v6"), control) }) {
		t.Fatalf("control %s (root process named sshd) not banned:\n%s", control, d.output())
	}
	time.Sleep(200 * time.Millisecond)
	els := setElements(t, ns, "sshd_v6")
	for _, c := range []struct {
		addr netip.Addr
		want bool
		who  string
	}{
		{victimNobody, false, "logger -t sshd as nobody"},
		{victimInjected, false, "an address inside a crafted user name"},
		{attacker, true, "the address sshd wrote after the crafted user name"},
	} {
		if got := banned(els, c.addr); got != c.want {
			t.Errorf("%s (%s): banned = %v, want %v", c.addr, c.who, got, c.want)
		}
	}
}

// TestJailFeaturesEndToEnd drives repeat-offender increments, IPv6 prefix bans, ignoreip and a
// config-defined filter through the journal into the kernel's sets.
func TestJailFeaturesEndToEnd(t *testing.T) {
	net := randomNet(t)
	ignored := randomNet(t)
	ns, d := runningDaemon(t, fmt.Sprintf(`
[defaults]
maxretry = 2
findtime = "1h"
bantime = "2s"
ignoreip = ["127.0.0.0/8", "::1", "%s::/64"]
[defaults.increment]
enabled = true
factor = 30.0
maxtime = "1h"

[jail.sshd]
enabled = true
ipv6_prefix = 64

[filter.myapp]
journal_match = ["_UID=0", "_COMM=myapp"]
failregex = ['^auth failed for user \S+ from <HOST>$']

[jail.myapp]
enabled = true
filter = "myapp"
ports = ["8080"]
bantime = "1h"
`, ignored))

	// Each failure from a process of its own: the sshd filter takes a process (_PID) for one
	// connection, and a connection's lines for one client.
	fail := func(comm string, msgs ...string) {
		for _, m := range msgs {
			testenv.SendAs(t, comm, map[string]string{"MESSAGE": m, "SYSLOG_IDENTIFIER": comm})
		}
	}
	sshdMsg := func(a string) string { return fmt.Sprintf("Failed password for root from %s port 2222 ssh2", a) }

	// Two addresses of one /64: with ipv6_prefix = 64 they count together and the /64 is banned, in
	// the jail's interval set of IPv6 prefixes.
	fail("sshd", sshdMsg(net+"::a"), sshdMsg(net+"::b"))
	prefix := netip.MustParsePrefix(net + "::/64")
	var first element
	if !waitFor(10*time.Second, func() bool {
		for _, e := range setElements(t, ns, "sshd_v6_net") {
			if e.Prefix == prefix {
				first = e
				return true
			}
		}
		return false
	}) {
		t.Fatalf("%s not banned as a /64 after failures from two of its addresses: %v\n%s", prefix, setElements(t, ns, "sshd_v6_net"), d.output())
	}
	if first.Timeout > 3*time.Second {
		t.Errorf("first ban of %s: kernel timeout %v, want the bantime 2s", prefix, first.Timeout)
	}
	if !banned(setElements(t, ns, "sshd_v6_net"), netip.MustParseAddr(net+"::beef")) {
		t.Errorf("another address of the banned /64 is not covered")
	}

	// The kernel expires the first ban; the next one is bantime * factor = 60s.
	if !waitFor(10*time.Second, func() bool { return !banned(setElements(t, ns, "sshd_v6_net"), prefix.Addr()) }) {
		t.Fatalf("the 2s ban of %s did not expire", prefix)
	}
	fail("sshd", sshdMsg(net+"::c"), sshdMsg(net+"::d"))
	var second element
	if !waitFor(10*time.Second, func() bool {
		for _, e := range setElements(t, ns, "sshd_v6_net") {
			if e.Prefix == prefix {
				second = e
				return true
			}
		}
		return false
	}) {
		t.Fatalf("%s not banned again", prefix)
	}
	if second.Timeout < 50*time.Second || second.Timeout > 61*time.Second {
		t.Errorf("second ban of %s: kernel timeout %v, want 2s*30 = 60s", prefix, second.Timeout)
	}

	// ignoreip: never banned, however often it fails.
	fail("sshd", sshdMsg(ignored+"::1"), sshdMsg(ignored+"::1"), sshdMsg(ignored+"::1"))

	// A config-defined filter, on its own jail and sets.
	app := fmt.Sprintf("192.0.2.%d", 10+rand.IntN(200))
	fail("myapp", "auth failed for user bob from "+app, "auth failed for user eve from "+app)
	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, ns, "myapp_v4"), netip.MustParseAddr(app)) }) {
		t.Fatalf("%s not banned by the config-defined filter myapp:\n%s", app, d.output())
	}
	if banned(append(setElements(t, ns, "sshd_v6"), setElements(t, ns, "sshd_v6_net")...), netip.MustParseAddr(ignored+"::1")) {
		t.Errorf("%s::1 is in ignoreip but was banned", ignored)
	}
	rules, _ := testenv.NSRun(ns, "nft", "list", "table", "inet", "gaoler")
	if !containsAny(rules, "dport 8080") {
		t.Errorf("no rule for myapp's port 8080:\n%s", rules)
	}
}

// TestLostMetadataTrusted reads journal files (journal.directory, written by systemd-journal-remote)
// with entries as journald stores them when the sender exited before it was looked up: root's
// (_UID=0, from the socket's credentials) but without _COMM or _SYSTEMD_UNIT. Such sshd entries count;
// root's `logger -t sshd` (_COMM=logger) and an unprivileged user's do not.
func TestLostMetadataTrusted(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	dir := t.TempDir()
	net := randomNet(t)
	lost, rootLogger, user := net+"::1", net+"::2", net+"::3"
	base := uint64(time.Now().Add(-time.Minute).UnixMicro())
	var export strings.Builder
	for i, c := range []struct {
		addr   string
		fields []string
	}{
		{lost, []string{"_UID=0", "_GID=0", "_PID=4001", "SYSLOG_IDENTIFIER=sshd"}},
		{rootLogger, []string{"_UID=0", "_GID=0", "_PID=4002", "_COMM=logger", "SYSLOG_IDENTIFIER=sshd"}},
		{user, []string{"_UID=1000", "_GID=1000", "_PID=4003", "SYSLOG_IDENTIFIER=sshd"}},
		{lost, []string{"_UID=0", "_GID=0", "_PID=4004", "SYSLOG_IDENTIFIER=sshd"}},
		{rootLogger, []string{"_UID=0", "_GID=0", "_PID=4005", "_COMM=logger", "SYSLOG_IDENTIFIER=sshd"}},
		{user, []string{"_UID=1000", "_GID=1000", "_PID=4006", "SYSLOG_IDENTIFIER=sshd"}},
	} {
		fields := append(c.fields, "MESSAGE=Failed password for root from "+c.addr+" port 22 ssh2", "PRIORITY=6")
		export.WriteString(testenv.ExportEntry(base+uint64(i)*1000, fields...))
	}
	testenv.ExportToJournalDir(t, dir, export.String())
	ns, d := runningDaemon(t, fmt.Sprintf("[journal]\ndirectory = %q\n\n[defaults]\nmaxretry = 2\n\n[jail.sshd]\nenabled = true\n", dir))
	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, ns, "sshd_v6"), netip.MustParseAddr(lost)) }) {
		t.Fatalf("%s (root's sshd entries without process fields) not banned:\n%s", lost, d.output())
	}
	els := setElements(t, ns, "sshd_v6")
	for _, a := range []string{rootLogger, user} {
		if banned(els, netip.MustParseAddr(a)) {
			t.Errorf("%s banned from forged entries", a)
		}
	}
}
