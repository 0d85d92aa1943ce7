package testenv

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

var nsSeq atomic.Int64

// NetNS creates a fresh network namespace with `ip netns add`, brings its loopback up and returns its
// name and an open file descriptor for it (for nftables.WithNetNSFd and the like). The namespace is
// deleted, and the descriptor closed, in t.Cleanup. It requires root and the ip command.
func NetNS(t testing.TB) (name string, fd int) {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "ip")
	name = fmt.Sprintf("gaoler-t%d-%d", os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		var out []byte
		var err error
		for try := 0; try < 5; try++ { // a namespace still being torn down may be busy for a moment
			if out, err = exec.Command("ip", "netns", "del", name).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("ip netns del %s: %v: %s", name, err, out)
	})
	NSExec(t, name, "ip", "link", "set", "lo", "up")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	return name, int(h)
}

// NSExec runs a command inside the namespace (`ip netns exec`) and returns its combined output; a
// failure fails the test.
func NSExec(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := NSRun(name, args...)
	if err != nil {
		t.Fatalf("in namespace %s: %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// NSRun runs a command inside the namespace and returns its combined output and error.
func NSRun(name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// InNetNS runs fn on a locked OS thread that has joined the namespace, then returns the thread to the
// caller's namespace. Sockets fn opens stay in the namespace after it returns.
func InNetNS(t testing.TB, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("current namespace: %v", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatalf("entering namespace %s: %v", name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// The thread is stuck in the wrong namespace: keep it locked so that it dies with
			// the goroutine instead of running other code.
			runtime.LockOSThread()
			t.Errorf("leaving namespace %s: %v", name, err)
		}
	}()
	fn()
}

// Pair is two namespaces joined by a veth pair: a server and an attacker, each with an IPv4 address
// in 192.0.2.0/24 and an IPv6 address in 2001:db8::/64 on interface veth0.
type Pair struct {
	Server, Attacker     string // namespace names
	ServerFd, AttackerFd int
	ServerV4, AttackerV4 netip.Addr // 192.0.2.1, 192.0.2.2
	ServerV6, AttackerV6 netip.Addr // 2001:db8::1, 2001:db8::2
}

// NetNSPair creates two fresh namespaces (see NetNS) joined by a veth pair, with 192.0.2.1/24 and
// 2001:db8::1/64 on the server side and 192.0.2.2/24 and 2001:db8::2/64 on the attacker side. IPv6
// addresses skip duplicate address detection (nodad), so they are usable at once.
func NetNSPair(t testing.TB) Pair {
	t.Helper()
	p := Pair{
		ServerV4:   netip.MustParseAddr("192.0.2.1"),
		AttackerV4: netip.MustParseAddr("192.0.2.2"),
		ServerV6:   netip.MustParseAddr("2001:db8::1"),
		AttackerV6: netip.MustParseAddr("2001:db8::2"),
	}
	p.Server, p.ServerFd = NetNS(t)
	p.Attacker, p.AttackerFd = NetNS(t)
	NSExec(t, p.Server, "ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", p.Attacker)
	NSExec(t, p.Attacker, "ip", "link", "set", "veth1", "name", "veth0")
	for _, side := range []struct {
		ns     string
		v4, v6 netip.Addr
	}{{p.Server, p.ServerV4, p.ServerV6}, {p.Attacker, p.AttackerV4, p.AttackerV6}} {
		NSExec(t, side.ns, "ip", "addr", "add", side.v4.String()+"/24", "dev", "veth0")
		NSExec(t, side.ns, "ip", "addr", "add", side.v6.String()+"/64", "dev", "veth0", "nodad")
		NSExec(t, side.ns, "ip", "link", "set", "veth0", "up")
	}
	return p
}
