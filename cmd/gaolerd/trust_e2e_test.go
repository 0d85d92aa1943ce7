package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/internal/testenv"
	"github.com/gaoler/gaoler/logind/logindtest"
)

// trustAfter is the trust_after_login of the end-to-end tests: long enough for the checks and the
// restarts below, short enough to wait for its end.
const trustAfter = 45 * time.Second

// dialDaemon connects to the private bus at addr and waits until gaolerd answers there.
func dialDaemon(t *testing.T, addr string, d *daemonProc) *bus.Client {
	t.Helper()
	c, err := bus.DialAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !waitFor(15*time.Second, func() bool { _, err := c.ListTrusted("sshd"); return err == nil }) {
		t.Fatalf("gaolerd did not answer on the bus:\n%s", d.output())
	}
	return c
}

// trusted reports whether the daemon trusts a in jail sshd, and how.
func trusted(t *testing.T, c *bus.Client, a netip.Addr) (bus.TrustInfo, bool) {
	t.Helper()
	tr, ok, err := c.TrustOf("sshd", a.String())
	if err != nil {
		t.Fatalf("TrustOf %s: %v", a, err)
	}
	return tr, ok
}

// TestTrustAfterKeyLogin: Debian's real sshd in a namespace, gaolerd beside it. A key login from A
// makes A trusted: A then fails maxretry times with passwords and is not banned, while B, with no
// login, is banned as before; an IPv6 login trusts that address, not its /64 (a failing neighbour is
// banned alone). A forged "Accepted" line from an unprivileged sender trusts nobody. The trust
// survives SIGKILL and a clean restart, and once it has run out, A's new failures ban it.
func TestTrustAfterKeyLogin(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	for _, c := range []string{"sshpass", "ssh", "ssh-keygen", "nft", "logger", "runuser"} {
		testenv.RequireCommand(t, c)
	}
	pair := testenv.NetNSPair(t)
	// IPv4 from 203.0.113.0/24, which no other end-to-end test uses: a key login leaves a trusted
	// "Accepted" entry in the shared journal, which any gaolerd's first start reads back, so it must
	// never name another test's attacker. Within this test, addresses that log in come from .10-.109
	// and the others from .110-.249, so that an earlier run's logins decide nothing for this one.
	server4 := netip.MustParseAddr("203.0.113.1")
	testenv.NSExec(t, pair.Server, "ip", "addr", "add", server4.String()+"/24", "dev", "veth0")
	n := rand.IntN(100)
	a4 := netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", 10+n))
	m := 110 + rand.IntN(137)
	b4, c4, d4 := netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", m)), netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", m+1)),
		netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", m+2))
	r := rand.IntN(0xffff)
	a6 := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x:%x", r, 2*n+10))
	nb6 := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x:%x", r, 2*n+11))
	for _, a := range []netip.Addr{a4, b4, c4, d4} {
		testenv.NSExec(t, pair.Attacker, "ip", "addr", "add", a.String()+"/24", "dev", "veth0")
	}
	for _, a := range []netip.Addr{a6, nb6} {
		testenv.NSExec(t, pair.Attacker, "ip", "addr", "add", a.String()+"/64", "dev", "veth0", "nodad")
	}

	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	// The test's key is authorized for root by a file of its own (StrictModes off: it lives under
	// /tmp), so the host's accounts are left alone.
	startSSHD(t, pair, dir, fmt.Sprintf("ListenAddress %s\nPubkeyAuthentication yes\nAuthorizedKeysFile %s/authorized_keys\nStrictModes no\nPermitRootLogin prohibit-password\n", server4, dir))

	addr := testenv.SystemBus(t)
	env := "DBUS_SYSTEM_BUS_ADDRESS=" + addr
	cfg, _ := testConfig(t, fmt.Sprintf(`
[defaults]
maxretry = 3
findtime = "10m"
bantime = "10m"
ipv6_prefix = 64
trust_after_login = "%ds"

[jail.sshd]
enabled = true
`, int(trustAfter/time.Second)))
	gd := startDaemon(t, pair.Server, cfg, env)
	gd.waitReady(t, pair.Server)
	c := dialDaemon(t, addr, gd)

	ssh := func(from, to netip.Addr, opts ...string) error {
		args := []string{"netns", "exec", pair.Attacker, "timeout", "10", "ssh", "-q", "-b", from.String(),
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3"}
		args = append(append(args, opts...), "root@"+to.String(), "true")
		return exec.Command("ip", args...).Run()
	}
	keyLogin := func(from, to netip.Addr) {
		t.Helper()
		if err := ssh(from, to, "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey"); err != nil {
			t.Fatalf("key login from %s: %v", from, err)
		}
	}
	attack := func(from, to netip.Addr, times int) {
		for i := 0; i < times; i++ {
			cmd := exec.Command("ip", "netns", "exec", pair.Attacker, "timeout", "10", "sshpass", "-p", "wrong-password",
				"ssh", "-q", "-b", from.String(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
				"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
				"-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=3", "root@"+to.String(), "true")
			cmd.Run() // fails: that is the point
		}
	}
	isBanned := func(a netip.Addr) bool {
		set := "sshd_v4"
		if a.Is6() {
			set = "sshd_v6"
		}
		return banned(setElements(t, pair.Server, set), a)
	}
	waitBanned := func(a netip.Addr, why string) {
		t.Helper()
		if !waitFor(10*time.Second, func() bool { return isBanned(a) }) {
			t.Fatalf("%s (%s) not banned:\n%s", a, why, gd.output())
		}
	}

	loggedIn := time.Now()
	keyLogin(a4, server4)
	keyLogin(a6, pair.ServerV6)
	for _, a := range []netip.Addr{a4, a6} {
		var tr bus.TrustInfo
		var ok bool
		if !waitFor(10*time.Second, func() bool { tr, ok = trusted(t, c, a); return ok }) {
			t.Fatalf("%s not trusted after a key login:\n%s", a, gd.output())
		}
		if tr.User != "root" || tr.Method != "publickey" {
			t.Errorf("trust of %s: %+v, want a login of root by publickey", a, tr)
		}
		until := time.UnixMicro(int64(tr.UntilUsec))
		if d := until.Sub(loggedIn); d < trustAfter-5*time.Second || d > trustAfter+10*time.Second {
			t.Errorf("trust of %s until %v: %v after the login, want about %v", a, until, d, trustAfter)
		}
	}

	// A, trusted, fails maxretry times and more; then B, with no login, fails maxretry times: once
	// B is banned, A's earlier failures have been read too.
	attack(a4, server4, 4)
	attack(a6, pair.ServerV6, 3)
	attack(nb6, pair.ServerV6, 3)
	attack(b4, server4, 3)
	waitBanned(b4, "no login, 3 failures")
	waitBanned(nb6, "a neighbour of a trusted IPv6 address, 3 failures")
	for _, a := range []netip.Addr{a4, a6} {
		if isBanned(a) {
			t.Errorf("%s banned although it logged in with its key", a)
		}
	}
	// gaoler why says why A is not banned.
	why, err := c.Why(a4.String(), "sshd")
	if err != nil {
		t.Fatalf("Why %s: %v", a4, err)
	}
	if len(why.Bans) != 0 || len(why.NotBanned) != 1 || why.NotBanned[0].Trusted == nil ||
		why.NotBanned[0].Trusted.User != "root" || why.NotBanned[0].Trusted.Method != "publickey" {
		t.Errorf("Why %s = %+v: want not banned in sshd, trusted after root's publickey login", a4, why)
	}
	for _, e := range setElements(t, pair.Server, "sshd_v6") {
		if e.Prefix.Contains(nb6) && e.Prefix.Bits() != 128 {
			t.Errorf("the neighbour's ban is %v: a /64 ban would lock out the trusted %s", e.Prefix, a6)
		}
	}

	// A forged success line from an unprivileged user trusts nobody.
	forged := fmt.Sprintf("Accepted publickey for root from %s port 50000 ssh2: ED25519 SHA256:forged", c4)
	if out, err := exec.Command("runuser", "-u", "nobody", "--", "logger", "-t", "sshd", forged).CombinedOutput(); err != nil {
		t.Fatalf("logger as nobody: %v: %s", err, out)
	}
	attack(c4, server4, 3)
	waitBanned(c4, "a forged Accepted line, then 3 failures")
	if _, ok := trusted(t, c, c4); ok {
		t.Errorf("%s trusted after a forged Accepted line from nobody", c4)
	}

	// The trust survives SIGKILL and a clean stop.
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		gd.stop(t, sig)
		gd = startDaemon(t, pair.Server, cfg, env)
		gd.waitReady(t, pair.Server)
		c = dialDaemon(t, addr, gd)
		if _, ok := trusted(t, c, a4); !ok {
			t.Fatalf("trust of %s lost after %v:\n%s", a4, sig, gd.output())
		}
	}
	attack(a4, server4, 3)
	attack(d4, server4, 3)
	waitBanned(d4, "no login, 3 failures, after the restarts")
	if isBanned(a4) {
		t.Fatalf("%s banned after the restarts although its trust runs", a4)
	}
	if time.Since(loggedIn) > trustAfter {
		t.Fatalf("the checks took %v, longer than the trust (%v): make trustAfter longer", time.Since(loggedIn), trustAfter)
	}

	// Once the trust has run out, new failures ban A.
	if !waitFor(trustAfter+15*time.Second, func() bool { _, ok := trusted(t, c, a4); return !ok }) {
		t.Fatalf("trust of %s outlived trust_after_login", a4)
	}
	attack(a4, server4, 3)
	waitBanned(a4, "3 failures after its trust ran out")
	if err := gd.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("gaolerd exit: %v", err)
	}
}

// TestTrustFromLogindSession: a remote session that logind reports (a fake org.freedesktop.login1 on
// gaolerd's private system bus) trusts its host in the jails whose trust_methods take "logind"; a
// session whose RemoteHost is a name trusts nothing.
func TestTrustFromLogindSession(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	b := testenv.StartBus(t, logindtest.Policy)
	fake := logindtest.Start(t, b.Address())
	net := randomNet(t)
	before, later, named := netip.MustParseAddr(net+"::1"), netip.MustParseAddr(net+"::2"), netip.MustParseAddr(net+"::3")
	fake.Add(logindtest.Session{ID: "10", User: "admin", Service: "sshd", RemoteHost: before.String(), Remote: true})

	ns, _ := testenv.NetNS(t)
	cfg, _ := testConfig(t, `
[defaults]
maxretry = 2
trust_methods = ["publickey", "logind"]

[jail.sshd]
enabled = true
`)
	d := startDaemon(t, ns, cfg, "DBUS_SYSTEM_BUS_ADDRESS="+b.Address())
	d.waitReady(t, ns)
	c := dialDaemon(t, b.Address(), d)
	if !waitFor(10*time.Second, func() bool { _, ok := trusted(t, c, before); return ok }) {
		t.Fatalf("the session open at start did not trust %s:\n%s", before, d.output())
	}
	fake.New(logindtest.Session{ID: "11", User: "admin", Service: "sshd", RemoteHost: later.String(), Remote: true})
	fake.New(logindtest.Session{ID: "12", User: "admin", Service: "sshd", RemoteHost: "office.example.org", Remote: true})
	var tr bus.TrustInfo
	if !waitFor(10*time.Second, func() bool { var ok bool; tr, ok = trusted(t, c, later); return ok }) {
		t.Fatalf("SessionNew did not trust %s:\n%s", later, d.output())
	}
	if tr.Method != "logind" || tr.User != "admin" {
		t.Errorf("trust of %s: %+v, want a logind session of admin", later, tr)
	}
	for _, a := range []netip.Addr{before, later, named} {
		var es []map[string]string // one sender per address: sshd has one process per connection
		for i := 0; i < 3; i++ {
			es = append(es, sshdFailure(a, "root", 4000+i))
		}
		testenv.SendManyAs(t, "sshd", es, 0)
	}
	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, ns, "sshd_v6"), named) }) {
		t.Fatalf("%s (its session's RemoteHost was a name) not banned:\n%s", named, d.output())
	}
	for _, a := range []netip.Addr{before, later} {
		if banned(setElements(t, ns, "sshd_v6"), a) {
			t.Errorf("%s banned although a logind session trusts it", a)
		}
	}
	// The journal is shared: a first start reads back other tests' logins too. Count this test's.
	list, err := c.ListTrusted("sshd")
	mine := 0
	for _, tr := range list {
		if strings.HasPrefix(tr.Address, net+":") {
			mine++
		}
	}
	if err != nil || mine != 2 {
		t.Errorf("trusted %+v, %v: want the two sessions of %s::/64 with an address (none for a host name)", list, err, net)
	}
}
