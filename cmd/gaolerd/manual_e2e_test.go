package main

import (
	"net/netip"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// TestManualActionsSurviveSIGKILL: what the admin did over the bus stays done across a SIGKILL. A
// manual unban forgives the failures so far (a restart re-reading them bans nobody, new failures count
// afresh), and a manual ban is back in the kernel with its remaining time.
func TestManualActionsSurviveSIGKILL(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	busctl := testenv.RequireCommand(t, "busctl")
	bus := testenv.SystemBus(t)
	ns, _ := testenv.NetNS(t)
	cfg, _ := testConfig(t, "[defaults]\nmaxretry = 3\nfindtime = \"1h\"\nbantime = \"1h\"\n\n[jail.sshd]\nenabled = true\n")
	env := "DBUS_SYSTEM_BUS_ADDRESS=" + bus
	d := startDaemon(t, ns, cfg, env)
	call := func(method, sig string, args ...string) (string, error) {
		cmdArgs := append([]string{"--address=" + bus, "call", "io.github.gaoler.Gaoler1",
			"/io/github/gaoler/Gaoler1/jail/sshd", "io.github.gaoler.Gaoler1.Jail", method, sig}, args...)
		out, err := exec.Command(busctl, cmdArgs...).CombinedOutput()
		return string(out), err
	}
	if !waitFor(15*time.Second, func() bool { _, err := call("ListBans", ""); return err == nil }) {
		t.Fatalf("gaolerd did not take its bus name:\n%s", d.output())
	}
	net := randomNet(t)
	x := netip.MustParseAddr(net + "::1")
	manual := netip.MustParseAddr(net + "::2")
	isBanned := func(a netip.Addr) bool { return banned(setElements(t, ns, "sshd_v6"), a) }
	fail := func(a netip.Addr, n int) {
		var es []map[string]string
		for i := 0; i < n; i++ {
			es = append(es, sshdFailure(a, "root", 3000+i))
		}
		testenv.SendManyAs(t, "sshd", es, 0)
	}

	fail(x, 3)
	if !waitFor(10*time.Second, func() bool { return isBanned(x) }) {
		t.Fatalf("%s not banned after 3 failures", x)
	}
	if out, err := call("Unban", "s", x.String()); err != nil {
		t.Fatalf("Unban: %v: %s", err, out)
	}
	if out, err := call("Ban", "st", manual.String(), "600"); err != nil {
		t.Fatalf("Ban: %v: %s", err, out)
	}
	if isBanned(x) || !isBanned(manual) {
		t.Fatalf("after Unban %s / Ban %s: banned = %v / %v", x, manual, isBanned(x), isBanned(manual))
	}

	d.stop(t, syscall.SIGKILL)
	testenv.NSExec(t, ns, "nft", "flush", "ruleset") // as if the machine had rebooted
	d = startDaemon(t, ns, cfg, env)
	if !waitFor(15*time.Second, func() bool { return isBanned(manual) }) {
		t.Fatalf("manual ban of %s not restored after SIGKILL:\n%s", manual, d.output())
	}
	for _, e := range setElements(t, ns, "sshd_v6") {
		if e.Prefix.Contains(manual) && (e.Timeout > 600*time.Second || e.Timeout < 560*time.Second) {
			t.Errorf("restored manual ban has timeout %v, want its remaining time of the 600s", e.Timeout)
		}
	}
	time.Sleep(time.Second)
	if isBanned(x) {
		t.Fatalf("%s banned again after a restart, for failures the admin forgave", x)
	}
	fail(x, 2)
	time.Sleep(time.Second)
	if isBanned(x) {
		t.Fatalf("%s banned after 2 new failures: the forgiven ones counted", x)
	}
	fail(x, 1)
	if !waitFor(10*time.Second, func() bool { return isBanned(x) }) {
		t.Fatalf("%s not banned after 3 new failures", x)
	}
	if out, err := call("Unban", "s", netip.MustParseAddr(net+"::99").String()); err == nil || !containsAny(out, "NotBanned", "not banned") {
		t.Errorf("Unban of an address that is not banned: %v %s, want NotBanned", err, out)
	}
}
