package main

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/internal/testenv"
)

// TestNoSelfLockout: the real gaolerd, on a private bus, refuses manual bans that would lock the host
// out (a prefix holding ignoreip or one of the namespace's own addresses, a prefix with host bits set)
// with InvalidAddress and a message naming why, over the bus and through the gaoler client; it bans
// the canonical prefix and says so, as an unban names the canonical prefix it lifted; and an offender whose /64 (ipv6_prefix = 64) holds one of the host's
// addresses is banned as its single address.
func TestNoSelfLockout(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	busAddr := testenv.SystemBus(t)
	ns, _ := testenv.NetNS(t)
	own := randomNet(t)   // a /64 holding an address of the host
	other := randomNet(t) // a /64 holding none
	testenv.NSExec(t, ns, "ip", "addr", "add", "203.0.113.77/32", "dev", "lo")
	testenv.NSExec(t, ns, "ip", "addr", "add", own+"::1/128", "dev", "lo", "nodad")
	cfg, _ := testConfig(t, "[defaults]\nmaxretry = 3\nfindtime = \"1h\"\nbantime = \"1h\"\nipv6_prefix = 64\n\n[jail.sshd]\nenabled = true\n")
	d := startDaemon(t, ns, cfg, "DBUS_SYSTEM_BUS_ADDRESS="+busAddr)
	d.waitReady(t, ns)

	conn, err := dbus.Connect(busAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	jail := conn.Object("io.github.gaoler.Gaoler1", "/io/github/gaoler/Gaoler1/jail/sshd")
	if !waitFor(15*time.Second, func() bool {
		return jail.Call("io.github.gaoler.Gaoler1.Jail.ListBans", 0).Err == nil
	}) {
		t.Fatalf("gaolerd did not take its bus name:\n%s", d.output())
	}

	refused := []struct{ addr, msg string }{
		{"0.0.0.0/0", "0.0.0.0/0 contains 127.0.0.0/8, which jail sshd ignores"},
		{"::/0", "::/0 contains ::1, which jail sshd ignores"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0 contains 127.0.0.0/8, which jail sshd ignores"},
		{"203.0.113.0/24", "203.0.113.0/24 contains 203.0.113.77, an address of this host, which jail sshd ignores (ignoreself)"},
		{own + "::/64", own + "::/64 contains " + own + "::1, an address of this host, which jail sshd ignores (ignoreself)"},
		{"127.0.0.0/7", "127.0.0.0/7 has host bits set: did you mean 126.0.0.0/7, or 127.0.0.0/8?"},
	}
	for _, r := range refused {
		for _, method := range []string{"Ban", "BanEx"} {
			err := jail.Call("io.github.gaoler.Gaoler1.Jail."+method, 0, r.addr, uint64(0)).Err
			var de dbus.Error
			if !errors.As(err, &de) || de.Name != "io.github.gaoler.Gaoler1.Error.InvalidAddress" || len(de.Body) == 0 || de.Body[0] != r.msg {
				t.Errorf("%s(%s): %#v; want io.github.gaoler.Gaoler1.Error.InvalidAddress %q", method, r.addr, err, r.msg)
			}
		}
	}

	gaoler := filepath.Join(binaries(t), "gaoler")
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(gaoler, args...)
		cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+busAddr, "NO_COLOR=1")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), stdout.String(), stderr.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}
	for _, r := range refused {
		code, stdout, stderr := run("ban", "sshd", r.addr)
		if want := "gaoler: " + r.msg + "\n"; code != 2 || stdout != "" || stderr != want {
			t.Errorf("gaoler ban sshd %s: exit %d, %q, %q; want 2, %q", r.addr, code, stdout, stderr, want)
		}
	}
	// gaolerd read back the last hour of the journal, so the sets may hold other tests' addresses:
	// look for what the refused bans would have put there.
	for _, e := range sshdElements(t, ns) {
		if e.Prefix.Addr().Is4() && e.Prefix.Bits() < 32 || e.Prefix.Addr().Is6() && e.Prefix.Bits() < 64 {
			t.Errorf("a refused ban reached the kernel: %s", e.Prefix)
		}
	}

	// What is banned is the canonical prefix, and the client says so.
	for _, b := range []struct{ addr, out, elem string }{
		{"::ffff:198.51.100.177", "Banned ::ffff:198.51.100.177 as 198.51.100.177 in jail sshd for 10m\n", "198.51.100.177/32"},
		{other + "::9", "Banned " + other + "::9 as " + other + "::/64 in jail sshd for 10m\n", other + "::/64"},
		{own + "::9", "Banned " + own + "::9 in jail sshd for 10m\n", own + "::9/128"},
		{"198.51.100.0/25", "Banned 198.51.100.0/25 in jail sshd for 10m\n", "198.51.100.0/25"},
	} {
		if code, stdout, stderr := run("ban", "sshd", b.addr, "--for", "10m"); code != 0 || stdout != b.out {
			t.Errorf("gaoler ban sshd %s: exit %d, %q, %q; want 0, %q", b.addr, code, stdout, stderr, b.out)
		}
		if !hasElement(t, ns, netip.MustParsePrefix(b.elem)) {
			t.Errorf("%s is not in the kernel after gaoler ban sshd %s", b.elem, b.addr)
		}
	}

	// An unban names the canonical prefix it lifted, whatever form the address was typed in, and the
	// kernel no longer holds it.
	for _, u := range []struct{ addr, out, elem string }{
		{"::ffff:198.51.100.177", "Unbanned ::ffff:198.51.100.177 as 198.51.100.177 in jail sshd\n", "198.51.100.177/32"},
		{other + "::5", "Unbanned " + other + "::5 as " + other + "::/64 in jail sshd\n", other + "::/64"},
		{own + "::9/128", "Unbanned " + own + "::9/128 as " + own + "::9 in jail sshd\n", own + "::9/128"},
		{"198.51.100.0/25", "Unbanned 198.51.100.0/25 in jail sshd\n", "198.51.100.0/25"},
	} {
		if code, stdout, stderr := run("unban", "sshd", u.addr); code != 0 || stdout != u.out {
			t.Errorf("gaoler unban sshd %s: exit %d, %q, %q; want 0, %q", u.addr, code, stdout, stderr, u.out)
		}
		if hasElement(t, ns, netip.MustParsePrefix(u.elem)) {
			t.Errorf("%s is still in the kernel after gaoler unban sshd %s", u.elem, u.addr)
		}
	}

	// The engine's own ban of an offender in the host's /64 is of the offender alone.
	offender := netip.MustParseAddr(own + "::abc")
	var es []map[string]string
	for i := 0; i < 3; i++ {
		es = append(es, sshdFailure(offender, "root", 4000+i))
	}
	testenv.SendManyAs(t, "sshd", es, 0)
	if !waitFor(10*time.Second, func() bool { return hasElement(t, ns, netip.PrefixFrom(offender, 128)) }) {
		t.Fatalf("%s not banned as itself after 3 failures:\n%v\n%s", offender, sshdElements(t, ns), d.output())
	}
	for _, e := range sshdElements(t, ns) {
		if e.Prefix.Contains(netip.MustParseAddr(own + "::1")) {
			t.Errorf("the kernel holds %s, which contains the host's own %s::1", e.Prefix, own)
		}
	}
}

// sshdElements returns the elements of the jail sshd's sets in ns: single addresses and prefixes, of
// both families.
func sshdElements(t *testing.T, ns string) []element {
	var els []element
	for _, set := range []string{"sshd_v4", "sshd_v4_net", "sshd_v6", "sshd_v6_net"} {
		els = append(els, setElements(t, ns, set)...)
	}
	return els
}

// hasElement reports whether the jail sshd's sets in ns hold exactly p.
func hasElement(t *testing.T, ns string, p netip.Prefix) bool {
	for _, e := range sshdElements(t, ns) {
		if e.Prefix == p {
			return true
		}
	}
	return false
}
