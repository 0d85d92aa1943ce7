package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// TestSSHDBruteForceBanned is the walking skeleton end to end: Debian's real sshd in a server
// namespace logs failed password logins from an attacker namespace to the real journald; gaolerd in
// the server namespace reads them, bans the attacker's IPv4 and IPv6 addresses in nftables sets with
// kernel timeouts, and the attacker's next TCP connection to port 22 is refused.
func TestSSHDBruteForceBanned(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	testenv.RequireCommand(t, "sshpass")
	testenv.RequireCommand(t, "ssh")
	testenv.RequireCommand(t, "nft")

	pair := testenv.NetNSPair(t)
	// The attack comes from addresses of its own, so that failures earlier runs left in the journal
	// (which a first start reads back) cannot be what bans them.
	n := 10 + rand.IntN(240)
	atk4 := netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", n))
	atk6 := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x:%x", rand.IntN(0xffff), n))
	testenv.NSExec(t, pair.Attacker, "ip", "addr", "add", atk4.String()+"/24", "dev", "veth0")
	testenv.NSExec(t, pair.Attacker, "ip", "addr", "add", atk6.String()+"/64", "dev", "veth0", "nodad")

	startSSHD(t, pair, t.TempDir(), "")

	cfg, _ := testConfig(t, `
[defaults]
maxretry = 3
findtime = "10m"
bantime = "10m"

[jail.sshd]
enabled = true
`)
	gd := startDaemon(t, pair.Server, cfg)
	// gaolerd is ready once its table is there.
	gd.waitReady(t, pair.Server)

	attack := func(from, to netip.Addr) {
		host := to.String()
		cmd := exec.Command("ip", "netns", "exec", pair.Attacker, "timeout", "10", "sshpass", "-p", "wrong-password",
			"ssh", "-q", "-b", from.String(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
			"-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=3", "root@"+host, "true")
		cmd.Run() // fails: that is the point
	}
	for i := 0; i < 3; i++ {
		attack(atk4, pair.ServerV4)
		attack(atk6, pair.ServerV6)
	}

	for _, c := range []struct {
		set  string
		addr netip.Addr
	}{{"sshd_v4", atk4}, {"sshd_v6", atk6}} {
		var els []element
		if !waitFor(10*time.Second, func() bool {
			els = setElements(t, pair.Server, c.set)
			return banned(els, c.addr)
		}) {
			t.Fatalf("%s not in set %s after 3 failed logins: %v\ngaolerd:\n%s", c.addr, c.set, els, gd.output())
		}
		for _, e := range els {
			if e.Prefix.Contains(c.addr) && (e.Timeout <= 0 || e.Timeout > 10*time.Minute) {
				t.Errorf("%s: element %v has timeout %v, want the bantime (10m) in the kernel", c.set, e.Prefix, e.Timeout)
			}
		}
	}
	// A neighbour in the attacker's namespace that did nothing is not banned and still reaches sshd.
	nb := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x:%x", rand.IntN(0xffff), n+1))
	testenv.NSExec(t, pair.Attacker, "ip", "addr", "add", nb.String()+"/64", "dev", "veth0", "nodad")
	if banned(setElements(t, pair.Server, "sshd_v6"), nb) {
		t.Errorf("%s was banned but never failed a login", nb)
	}
	out, _ := exec.Command("ip", "netns", "exec", pair.Attacker, "timeout", "5", "ssh", "-b", nb.String(),
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "root@"+pair.ServerV6.String(), "true").CombinedOutput()
	if !strings.Contains(string(out), "Permission denied") {
		t.Errorf("neighbour %s did not reach sshd: %s", nb, out)
	}

	for _, c := range []struct{ from, to netip.Addr }{{atk4, pair.ServerV4}, {atk6, pair.ServerV6}} {
		// bash's /dev/tcp cannot pick a source address: ssh's -b can, and must fail to connect.
		cmd := exec.Command("ip", "netns", "exec", pair.Attacker, "timeout", "5", "ssh", "-b", c.from.String(),
			"-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "root@"+c.to.String(), "true")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("connection from %s to %s:22 succeeded after the ban", c.from, c.to)
		} else if !containsAny(string(out), "Connection refused", "timed out") {
			t.Errorf("connection from %s to %s:22: %s (want refused)", c.from, c.to, out)
		}
	}
	if err := gd.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("gaolerd exit after SIGTERM: %v\n%s", err, gd.output())
	}
	// Bans stay in the kernel after a clean stop: they expire by themselves.
	if !banned(setElements(t, pair.Server, "sshd_v4"), atk4) {
		t.Errorf("ban of %s gone after gaolerd stopped", atk4)
	}
}
