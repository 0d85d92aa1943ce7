package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// TestSSHDOneAttemptOneFailure: Debian's real sshd logs "Invalid user nosuchuser from H port P" and
// then "Failed password for invalid user nosuchuser from H port P ssh2" for one `ssh
// nosuchuser@host` with one password. That is one attempt: with maxretry = 3, two such tries ban
// nobody and the third bans.
func TestSSHDOneAttemptOneFailure(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	testenv.RequireCommand(t, "sshpass")
	testenv.RequireCommand(t, "ssh")
	testenv.RequireCommand(t, "nft")

	pair := testenv.NetNSPair(t)
	// An address of the server's subnet; findtime is short, so that what earlier runs left in the
	// journal (which a first start reads back) is too old to count.
	atk := netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 10+rand.IntN(240)))
	testenv.NSExec(t, pair.Attacker, "ip", "addr", "add", atk.String()+"/24", "dev", "veth0")
	startSSHD(t, pair, t.TempDir(), "")
	cfg, _ := testConfig(t, `
[defaults]
maxretry = 3
findtime = "1m"
bantime = "10m"

[jail.sshd]
enabled = true
`)
	gd := startDaemon(t, pair.Server, cfg)
	gd.waitReady(t, pair.Server)

	try := func() {
		cmd := exec.Command("ip", "netns", "exec", pair.Attacker, "timeout", "10", "sshpass", "-p", "wrong-password",
			"ssh", "-q", "-b", atk.String(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
			"-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=3", "nosuchuser@"+pair.ServerV4.String(), "true")
		cmd.Run() // fails: that is the point
	}
	try()
	try()
	// journald wakes its readers within half a second; give gaolerd time to have read both tries
	// (a slow machine only makes this check weaker, never wrong).
	time.Sleep(2 * time.Second)
	if banned(setElements(t, pair.Server, "sshd_v4"), atk) {
		t.Fatalf("%s banned after two tries of one password each (maxretry = 3): Invalid user and its Failed password counted twice\ngaolerd:\n%s",
			atk, gd.output())
	}
	try()
	if !waitFor(10*time.Second, func() bool { return banned(setElements(t, pair.Server, "sshd_v4"), atk) }) {
		t.Fatalf("%s not banned after three tries (maxretry = 3)\ngaolerd:\n%s", atk, gd.output())
	}
}
