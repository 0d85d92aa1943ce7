package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// sshd is the jail most tests use.
var sshd = JailRules{Name: "sshd", Protocol: "tcp", Ports: []PortRange{{22, 22}}, BlockType: "reject"}

// newTestNFTables returns an NFTables working in a fresh namespace, and the namespace's name.
func newTestNFTables(t *testing.T, opts ...Option) (*NFTables, string) {
	t.Helper()
	testenv.RequireCommand(t, "nft")
	name, fd := testenv.NetNS(t)
	n, err := NewNFTables("gaoler", append([]Option{WithNetNSFd(fd)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, name
}

func nft(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return testenv.NSExec(t, ns, append([]string{"nft"}, args...)...)
}

func pfx(s string) netip.Prefix {
	if strings.Contains(s, "/") {
		return netip.MustParsePrefix(s)
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

func mustBan(t *testing.T, b Backend, jail, p string, d time.Duration) {
	t.Helper()
	if err := b.Ban(jail, pfx(p), d); err != nil {
		t.Fatalf("Ban(%s, %s): %v", jail, p, err)
	}
}

func mustFlush(t *testing.T, b Backend) {
	t.Helper()
	if err := b.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// prefixes returns the prefixes of elems as strings.
func prefixes(elems []Element) []string {
	var out []string
	for _, e := range elems {
		out = append(out, e.Prefix.String())
	}
	return out
}

func elementsOf(t *testing.T, b Backend, jail string) []Element {
	t.Helper()
	elems, err := b.Elements(jail)
	if err != nil {
		t.Fatalf("Elements(%s): %v", jail, err)
	}
	return elems
}

func TestLayout(t *testing.T) {
	n, ns := newTestNFTables(t)
	jails := []JailRules{
		sshd,
		{Name: "web", Protocol: "tcp", Ports: []PortRange{{80, 80}, {443, 443}, {8000, 8080}}, BlockType: "drop", Hooks: []string{"input", "forward"}},
		{Name: "dns", Protocol: "udp", Ports: []PortRange{{53, 53}}},
		{Name: "all"},
		{Name: "range", Ports: []PortRange{{1000, 2000}}},
	}
	if err := n.Setup(jails); err != nil {
		t.Fatal(err)
	}
	got := nft(t, ns, "-n", "list", "ruleset")
	for _, want := range []string{
		"table inet gaoler {",
		"set sshd_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n",
		"set sshd_v6 {\n\t\ttype ipv6_addr\n\t\tflags timeout\n",
		"set sshd_v4_net {\n\t\ttype ipv4_addr\n\t\tflags interval,timeout\n",
		"set sshd_v6_net {\n\t\ttype ipv6_addr\n\t\tflags interval,timeout\n",
		"set web_v4 {", "set web_v6 {", "set web_v4_net {", "set dns_v4 {", "set all_v6 {", "set all_v6_net {",
		"chain input {\n\t\ttype filter hook input priority 0; policy accept;\n",
		"chain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n",
		`tcp dport 22 ip saddr @sshd_v4 counter packets 0 bytes 0 reject with tcp reset comment "gaoler jail sshd ipv4"`,
		`tcp dport 22 ip6 saddr @sshd_v6 counter packets 0 bytes 0 reject with tcp reset comment "gaoler jail sshd ipv6"`,
		`tcp dport 22 ip saddr @sshd_v4_net counter packets 0 bytes 0 reject with tcp reset comment "gaoler jail sshd ipv4 prefixes"`,
		`tcp dport 22 ip6 saddr @sshd_v6_net counter packets 0 bytes 0 reject with tcp reset comment "gaoler jail sshd ipv6 prefixes"`,
		`tcp dport { 80, 443, 8000-8080 } ip saddr @web_v4 counter packets 0 bytes 0 drop comment "gaoler jail web ipv4"`,
		`udp dport 53 ip saddr @dns_v4 counter packets 0 bytes 0 reject with icmpx 3 comment "gaoler jail dns ipv4"`,
		`ip6 saddr @all_v6 counter packets 0 bytes 0 reject with icmpx 3 comment "gaoler jail all ipv6"`,
		`meta l4proto { 6, 17 } th dport 1000-2000 ip saddr @range_v4 counter packets 0 bytes 0 reject with icmpx 3 comment "gaoler jail range ipv4"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("ruleset:\n%s", got)
	}
	// Heal's check sees the table as built.
	n.mu.Lock()
	broken, err := n.damaged(n.conn, n.jails)
	n.mu.Unlock()
	if broken || err != nil {
		t.Errorf("damaged() = %v, %v right after Setup", broken, err)
	}
	// The forward chain holds only the web jail's rules.
	fwd := nft(t, ns, "list", "chain", "inet", "gaoler", "forward")
	if strings.Count(fwd, "gaoler jail") != 4 || !strings.Contains(fwd, "web_v6_net") {
		t.Errorf("forward chain:\n%s", fwd)
	}
}

func TestBansInKernel(t *testing.T) {
	n, ns := newTestNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "192.0.2.7", 10*time.Minute)
	mustBan(t, n, "sshd", "2001:db8::7", time.Hour)
	mustBan(t, n, "sshd", "2001:db8:1::/64", time.Hour)
	mustBan(t, n, "sshd", "::ffff:198.51.100.9", time.Hour) // IPv4-mapped: banned as IPv4
	mustBan(t, n, "sshd", "255.255.255.255", time.Hour)     // no end element: open interval
	mustFlush(t, n)

	got := prefixes(elementsOf(t, n, "sshd"))
	want := []string{"192.0.2.7/32", "198.51.100.9/32", "255.255.255.255/32", "2001:db8::7/128", "2001:db8:1::/64"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Elements = %v, want %v", got, want)
	}
	set4 := nft(t, ns, "list", "set", "inet", "gaoler", "sshd_v4")
	for _, s := range []string{"192.0.2.7 timeout 10m expires", "198.51.100.9 timeout 1h", "255.255.255.255 timeout 1h"} {
		if !strings.Contains(set4, s) {
			t.Errorf("sshd_v4 lacks %q:\n%s", s, set4)
		}
	}
	// Single addresses in the hash sets, prefixes in the interval sets.
	for set, want := range map[string]string{"sshd_v6": "2001:db8::7 timeout 1h", "sshd_v6_net": "2001:db8:1::/64 timeout 1h"} {
		if got := nft(t, ns, "list", "set", "inet", "gaoler", set); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", set, want, got)
		}
	}

	// Extending replaces the timeout (delete + add), also where re-adding would not refresh it.
	mustBan(t, n, "sshd", "192.0.2.7", 3*time.Hour)
	mustFlush(t, n)
	// nft rounds what it prints ("expires 3h" or "2h59m59s998ms"): compare the parsed time.
	set4 = nft(t, ns, "list", "set", "inet", "gaoler", "sshd_v4")
	if timeout, left, ok := testenv.NFTElement(set4, "192.0.2.7"); !ok || timeout != 3*time.Hour || left > 3*time.Hour || left < 3*time.Hour-time.Minute {
		t.Errorf("extended ban not in the kernel (timeout %v, expires in %v):\n%s", timeout, left, set4)
	}
	for _, e := range elementsOf(t, n, "sshd") {
		if e.Prefix == pfx("192.0.2.7") {
			if left := time.Until(e.Expires); left < 3*time.Hour-time.Minute || left > 3*time.Hour {
				t.Errorf("192.0.2.7 expires in %v, want about 3h", left)
			}
		}
	}

	// Unban.
	if err := n.Unban("sshd", pfx("2001:db8::7")); err != nil {
		t.Fatal(err)
	}
	if err := n.Unban("sshd", pfx("192.0.2.99")); !errors.Is(err, ErrNotBanned) {
		t.Errorf("Unban of an unknown address: %v, want ErrNotBanned", err)
	}
	if err := n.Unban("nope", pfx("192.0.2.7")); !errors.Is(err, ErrNoSuchJail) {
		t.Errorf("Unban in an unknown jail: %v, want ErrNoSuchJail", err)
	}
	mustFlush(t, n)
	got = prefixes(elementsOf(t, n, "sshd"))
	want = []string{"192.0.2.7/32", "198.51.100.9/32", "255.255.255.255/32", "2001:db8:1::/64"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after unban Elements = %v, want %v", got, want)
	}
}

func TestOverlaps(t *testing.T) {
	n, _ := newTestNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "2001:db8::1", time.Hour)
	mustBan(t, n, "sshd", "2001:db8::2", time.Hour)
	mustBan(t, n, "sshd", "2001:db9::2", time.Hour)
	mustBan(t, n, "sshd", "10.1.2.3", time.Hour)
	mustFlush(t, n)

	// A prefix leaves the addresses inside it their own elements: they outlast it.
	mustBan(t, n, "sshd", "2001:db8::/64", 2*time.Hour)
	mustBan(t, n, "sshd", "10.0.0.0/8", 2*time.Hour)
	mustFlush(t, n)
	want := "10.0.0.0/8 10.1.2.3/32 2001:db8::/64 2001:db8::1/128 2001:db8::2/128 2001:db9::2/128"
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != want {
		t.Errorf("after prefix bans: %s, want %s", got, want)
	}
	if err := n.Unban("sshd", pfx("2001:db8::1")); err != nil {
		t.Errorf("Unban of an address inside a banned prefix: %v", err)
	}

	// An address banned inside a banned prefix gets its own element too, for when the prefix is gone.
	mustBan(t, n, "sshd", "10.9.9.9", 3*time.Hour)
	mustFlush(t, n)
	want = "10.0.0.0/8 10.1.2.3/32 10.9.9.9/32 2001:db8::/64 2001:db8::2/128 2001:db9::2/128"
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != want {
		t.Errorf("after a ban inside a prefix: %s, want %s", got, want)
	}

	// Prefixes never overlap in the interval set: a narrower one the wider one outlasts is absorbed,
	// one that outlasts the wider one waits outside the kernel and enters it when the wider one goes.
	mustBan(t, n, "sshd", "10.2.0.0/16", time.Hour)
	mustBan(t, n, "sshd", "10.3.0.0/16", 5*time.Hour)
	mustFlush(t, n)
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != want {
		t.Errorf("after prefixes inside a prefix: %s, want %s", got, want)
	}
	if err := n.Unban("sshd", pfx("10.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, n)
	want = "10.1.2.3/32 10.3.0.0/16 10.9.9.9/32 2001:db8::/64 2001:db8::2/128 2001:db9::2/128"
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != want {
		t.Errorf("after unbanning the wider prefix: %s, want %s", got, want)
	}

	// Both in one Flush: the narrower prefix first, then its cover.
	mustBan(t, n, "sshd", "172.16.1.0/24", time.Hour)
	mustBan(t, n, "sshd", "172.16.0.0/12", time.Hour)
	mustFlush(t, n)
	want = "10.1.2.3/32 10.3.0.0/16 10.9.9.9/32 172.16.0.0/12 2001:db8::/64 2001:db8::2/128 2001:db9::2/128"
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != want {
		t.Errorf("after prefix and cover in one flush: %s, want %s", got, want)
	}
}

// dial connects from the attacker namespace to addr:port and returns the error.
// ICMP admin-prohibited reads as EHOSTUNREACH over IPv4 and EACCES over IPv6.
func dial(t *testing.T, ns string, addr netip.Addr, port uint16, timeout time.Duration) error {
	t.Helper()
	var err error
	testenv.InNetNS(t, ns, func() {
		d := net.Dialer{Timeout: timeout}
		var c net.Conn
		c, err = d.Dial("tcp", netip.AddrPortFrom(addr, port).String())
		if err == nil {
			c.Close()
		}
	})
	return err
}

// listen accepts and closes TCP connections on port in the server namespace until the test ends.
func listen(t *testing.T, ns string, port uint16) {
	t.Helper()
	testenv.InNetNS(t, ns, func() {
		l, err := net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	})
}

func TestBlockingObserved(t *testing.T) {
	testenv.RequireCommand(t, "nft")
	pair := testenv.NetNSPair(t)
	n, err := NewNFTables("gaoler", WithNetNSFd(pair.ServerFd))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	jails := []JailRules{
		{Name: "ssh", Protocol: "tcp", Ports: []PortRange{{22, 22}}, BlockType: "reject"},
		{Name: "web", Protocol: "tcp", Ports: []PortRange{{8000, 8080}}, BlockType: "drop"},
		{Name: "any", BlockType: "reject"},
	}
	if err := n.Setup(jails); err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint16{22, 8080, 9000} {
		listen(t, pair.Server, p)
	}
	for _, addr := range []netip.Addr{pair.ServerV4, pair.ServerV6} {
		for _, p := range []uint16{22, 8080, 9000} {
			if err := dial(t, pair.Attacker, addr, p, 300*time.Millisecond); err != nil {
				t.Fatalf("before any ban, %v port %d: %v", addr, p, err)
			}
		}
	}
	for _, a := range []netip.Addr{pair.AttackerV4, pair.AttackerV6} {
		mustBan(t, n, "ssh", a.String(), time.Hour)
		mustBan(t, n, "web", a.String(), time.Hour)
	}
	mustFlush(t, n)
	for _, addr := range []netip.Addr{pair.ServerV4, pair.ServerV6} {
		// reject on tcp: a reset, seen at once as "connection refused".
		start := time.Now()
		if err := dial(t, pair.Attacker, addr, 22, 300*time.Millisecond); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%v port 22 (reject): %v, want connection refused", addr, err)
		} else if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("%v port 22 (reject) took %v", addr, d)
		}
		// drop: nothing comes back, the dial times out.
		if err := dial(t, pair.Attacker, addr, 8080, 300*time.Millisecond); err == nil || !isTimeout(err) {
			t.Errorf("%v port 8080 (drop): %v, want a timeout", addr, err)
		}
		// A port no jail covers stays open.
		if err := dial(t, pair.Attacker, addr, 9000, 300*time.Millisecond); err != nil {
			t.Errorf("%v port 9000 (not covered): %v", addr, err)
		}
	}
	// A jail for every port and protocol rejects with ICMP admin-prohibited: "no route to host".
	mustBan(t, n, "any", pair.AttackerV4.String(), time.Hour)
	mustBan(t, n, "any", "2001:db8::/64", time.Hour)
	mustFlush(t, n)
	// The IPv6 error may come late: the ban also rejects the attacker's neighbour advertisements.
	for _, addr := range []netip.Addr{pair.ServerV4, pair.ServerV6} {
		if err := dial(t, pair.Attacker, addr, 9000, 3*time.Second); !adminProhibited(err) {
			t.Errorf("%v port 9000 (icmpx admin-prohibited): %v, want no route to host or permission denied", addr, err)
		}
	}
	// Unbanning opens the door again.
	for _, a := range []netip.Addr{pair.AttackerV4, pair.AttackerV6} {
		if err := n.Unban("ssh", netip.PrefixFrom(a, a.BitLen())); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, n)
	for _, addr := range []netip.Addr{pair.ServerV4, pair.ServerV6} {
		if err := dial(t, pair.Attacker, addr, 22, 3*time.Second); !adminProhibited(err) {
			// Still banned by the "any" jail, with ICMP now.
			t.Errorf("%v port 22 after unban from ssh: %v, want no route to host from jail any", addr, err)
		}
	}
	if err := n.Unban("any", netip.PrefixFrom(pair.AttackerV4, 32)); err != nil {
		t.Fatal(err)
	}
	if err := n.Unban("any", pfx("2001:db8::/64")); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, n)
	for _, addr := range []netip.Addr{pair.ServerV4, pair.ServerV6} {
		if err := dial(t, pair.Attacker, addr, 22, 300*time.Millisecond); err != nil {
			t.Errorf("%v port 22 after all unbans: %v", addr, err)
		}
	}
}

func adminProhibited(err error) bool {
	return errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.EACCES)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bulk returns n distinct IPv4 /32 prefixes from 10.0.0.0/8 and n IPv6 /128 ones.
func bulk(n int) (v4, v6 []netip.Prefix) {
	for i := 0; i < n; i++ {
		v4 = append(v4, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32))
		v6 = append(v6, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i), 13: byte(i >> 16)}), 128))
	}
	return v4, v6
}

// countElements counts the elements of a set as nft lists them.
func countElements(t *testing.T, ns, set string) int {
	t.Helper()
	out := nft(t, ns, "-j", "list", "set", "inet", "gaoler", set)
	return strings.Count(out, `{"elem": {`)
}

func TestBulk100k(t *testing.T) {
	n, ns := newTestNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	var messages, elems, largest int
	n.observe = func(set string, del bool, count int) {
		messages++
		elems += count
		largest = max(largest, count)
	}
	v4, v6 := bulk(50_000)
	start := time.Now()
	for i := range v4 {
		if err := n.Ban("sshd", v4[i], time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := n.Ban("sshd", v6[i], time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, n)
	t.Logf("100,000 bans in one Flush: %v, %d messages, %d elements, at most %d a message", time.Since(start), messages, elems, largest)
	if elems != 100_000 || largest > maxElementsPerCall {
		t.Errorf("sent %d elements (want 100000: one per address), at most %d a message (limit %d)", elems, largest, maxElementsPerCall)
	}
	if got := len(elementsOf(t, n, "sshd")); got != 100_000 {
		t.Errorf("Elements: %d, want 100000", got)
	}
	if c4, c6 := countElements(t, ns, "sshd_v4"), countElements(t, ns, "sshd_v6"); c4 != 50_000 || c6 != 50_000 {
		t.Errorf("nft counts %d + %d elements, want 50000 + 50000", c4, c6)
	}
	// Unban half of them in one Flush.
	for i := 0; i < len(v4); i += 2 {
		if err := n.Unban("sshd", v4[i]); err != nil {
			t.Fatal(err)
		}
		if err := n.Unban("sshd", v6[i]); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, n)
	if got := len(elementsOf(t, n, "sshd")); got != 50_000 {
		t.Errorf("after unbans Elements: %d, want 50000", got)
	}
}

// remaining returns the time left of each element at now, by prefix.
func remaining(t *testing.T, b Backend, jail string, now time.Time) map[string]time.Duration {
	t.Helper()
	out := make(map[string]time.Duration)
	for _, e := range elementsOf(t, b, jail) {
		out[e.Prefix.String()] = e.Expires.Sub(now)
	}
	return out
}

func checkRemaining(t *testing.T, got map[string]time.Duration, want map[string]time.Duration, tolerance time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d elements %v, want %d %v", len(got), got, len(want), want)
	}
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s missing", p)
			continue
		}
		if g < w-tolerance || g > w+tolerance {
			t.Errorf("%s: %v left, want %v ± %v", p, g, w, tolerance)
		}
	}
}

func TestHeal(t *testing.T) {
	// The clock jumps 4 minutes after the bans, so that a rebuild must install the remaining
	// times (6m, 56m, 1h56m), not the original ones.
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	n, ns := newTestNFTables(t, WithHealInterval(100*time.Millisecond), WithClock(clock))
	jails := []JailRules{sshd, {Name: "web", Protocol: "tcp", Ports: []PortRange{{80, 80}}, Hooks: []string{"input", "forward"}}}
	if err := n.Setup(jails); err != nil {
		t.Fatal(err)
	}
	// Another table, which must survive everything gaoler does.
	nft(t, ns, "add", "table", "ip", "other")
	nft(t, ns, "add", "chain", "ip", "other", "c", "{ type filter hook input priority 10; }")
	nft(t, ns, "add", "rule", "ip", "other", "c", "tcp", "dport", "9", "drop")

	mustBan(t, n, "sshd", "192.0.2.7", 10*time.Minute)
	mustBan(t, n, "sshd", "2001:db8::/64", time.Hour)
	mustBan(t, n, "web", "198.51.100.1", 2*time.Hour)
	mustFlush(t, n)
	offset.Store(int64(4 * time.Minute))

	ctx, cancel := context.WithCancel(context.Background())
	restored := make(chan int, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Heal(ctx, func(n int) { restored <- n })
	}()
	defer func() { cancel(); <-done }()

	wait := func(what string) int {
		t.Helper()
		select {
		case c := <-restored:
			return c
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: not restored within 5s", what)
			return 0
		}
	}
	const tolerance = 3 * time.Second
	for _, tc := range []struct {
		name   string
		damage string // one nft invocation, so that Heal cannot step in halfway
	}{
		{"flush ruleset", "flush ruleset"},
		{"delete table", "delete table inet gaoler"},
		{"delete one set", "flush chain inet gaoler input; flush chain inet gaoler forward; delete set inet gaoler sshd_v6"},
		{"delete a rule", "delete rule inet gaoler forward handle LAST"},
		{"delete a chain", "flush chain inet gaoler forward; delete chain inet gaoler forward"},
		{"add a rule", "insert rule inet gaoler input accept"},
		{"replace a rule", "replace rule inet gaoler input handle LAST accept comment \"gaoler jail web ipv6\""},
	} {
		damage := tc.damage
		if strings.Contains(damage, "LAST") {
			chain := strings.Fields(damage)[4]
			out := nft(t, ns, "-a", "list", "chain", "inet", "gaoler", chain)
			i := strings.LastIndex(out, "# handle ")
			damage = strings.Replace(damage, "LAST", strings.Fields(out[i+len("# handle "):])[0], 1)
		}
		nft(t, ns, damage)
		start := time.Now()
		c := wait(tc.name)
		t.Logf("%s: restored %d bans after %v", tc.name, c, time.Since(start))
		if c != 3 {
			t.Errorf("%s: restored(%d), want 3", tc.name, c)
		}
		checkRemaining(t, remaining(t, n, "sshd", clock()), map[string]time.Duration{"192.0.2.7/32": 6 * time.Minute, "2001:db8::/64": 56 * time.Minute}, tolerance)
		checkRemaining(t, remaining(t, n, "web", clock()), map[string]time.Duration{"198.51.100.1/32": 116 * time.Minute}, tolerance)
		if tc.name == "flush ruleset" {
			nft(t, ns, "add", "table", "ip", "other")
			nft(t, ns, "add", "chain", "ip", "other", "c", "{ type filter hook input priority 10; }")
			nft(t, ns, "add", "rule", "ip", "other", "c", "tcp", "dport", "9", "drop")
		}
		if out := nft(t, ns, "list", "table", "ip", "other"); !strings.Contains(out, "tcp dport 9 drop") {
			t.Errorf("%s: other table changed:\n%s", tc.name, out)
		}
	}
	// Nothing to heal: no restore reported.
	select {
	case c := <-restored:
		t.Errorf("restored(%d) without damage", c)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestRestartKeepsBans(t *testing.T) {
	n, ns := newTestNFTables(t)
	jails := []JailRules{sshd, {Name: "web", Protocol: "tcp", Ports: []PortRange{{80, 80}}}}
	if err := n.Setup(jails); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "192.0.2.7", 10*time.Minute)
	mustBan(t, n, "sshd", "2001:db8::7", time.Hour)
	mustBan(t, n, "web", "198.51.100.1", time.Hour)
	mustFlush(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// Close leaves the bans in the kernel.
	if out := nft(t, ns, "list", "set", "inet", "gaoler", "sshd_v4"); !strings.Contains(out, "192.0.2.7") {
		t.Fatalf("after Close:\n%s", out)
	}

	// A new process adopts them; the jail "web" is gone with its set, a new jail starts empty.
	fd := netnsFd(t, ns)
	n2, err := NewNFTables("gaoler", WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if err := n2.Setup([]JailRules{sshd, {Name: "new"}}); err != nil {
		t.Fatal(err)
	}
	checkRemaining(t, remaining(t, n2, "sshd", time.Now()), map[string]time.Duration{"192.0.2.7/32": 10 * time.Minute, "2001:db8::7/128": time.Hour}, 3*time.Second)
	if elems := elementsOf(t, n2, "new"); len(elems) != 0 {
		t.Errorf("new jail has %v", elems)
	}
	if out := nft(t, ns, "list", "ruleset"); strings.Contains(out, "web_v4") {
		t.Errorf("removed jail's set still there:\n%s", out)
	}
	// The mirror knows the adopted bans: unban works, and a ban inside one is a no-op.
	if err := n2.Unban("sshd", pfx("2001:db8::7")); err != nil {
		t.Errorf("Unban of an adopted ban: %v", err)
	}
	mustFlush(t, n2)

	// A reload (Setup again) keeps the bans of the jails that remain.
	mustBan(t, n2, "new", "203.0.113.5", time.Hour)
	mustFlush(t, n2)
	if err := n2.Setup([]JailRules{{Name: "new", BlockType: "drop"}}); err != nil {
		t.Fatal(err)
	}
	if got := prefixes(elementsOf(t, n2, "new")); strings.Join(got, " ") != "203.0.113.5/32" {
		t.Errorf("after reload: %v", got)
	}
	if _, err := n2.Elements("sshd"); !errors.Is(err, ErrNoSuchJail) {
		t.Errorf("removed jail: %v", err)
	}

	// DeleteTable removes everything.
	if err := n2.DeleteTable(); err != nil {
		t.Fatal(err)
	}
	if out := nft(t, ns, "list", "ruleset"); strings.Contains(out, "gaoler") {
		t.Errorf("after DeleteTable:\n%s", out)
	}
}

func netnsFd(t *testing.T, name string) int {
	t.Helper()
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func TestFlushRecovers(t *testing.T) {
	n, ns := newTestNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "192.0.2.7", time.Hour)
	mustFlush(t, n)

	// The table vanished before Heal noticed: Flush rebuilds it with the new ban, Heal reports it.
	nft(t, ns, "delete table inet gaoler")
	mustBan(t, n, "sshd", "192.0.2.8", time.Hour)
	mustFlush(t, n)
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != "192.0.2.7/32 192.0.2.8/32" {
		t.Errorf("after rebuild in Flush: %s", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reported := -1
	n.Heal(ctx, func(c int) { reported = c; cancel() })
	if reported != 2 {
		t.Errorf("Heal reported %d restored bans, want 2", reported)
	}

	// An element removed behind gaoler's back: the unban's delete fails, Flush resyncs and succeeds.
	nft(t, ns, "delete element inet gaoler sshd_v4 { 192.0.2.7 }")
	if err := n.Unban("sshd", pfx("192.0.2.7")); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "192.0.2.9", time.Hour)
	mustFlush(t, n)
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != "192.0.2.8/32 192.0.2.9/32" {
		t.Errorf("after resync: %s", got)
	}
}

func TestKernelExpires(t *testing.T) {
	n, _ := newTestNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "192.0.2.7", 300*time.Millisecond)
	mustBan(t, n, "sshd", "192.0.2.8", time.Hour)
	mustFlush(t, n)
	time.Sleep(700 * time.Millisecond)
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != "192.0.2.8/32" {
		t.Errorf("after expiry: %s", got)
	}
	if err := n.Unban("sshd", pfx("192.0.2.7")); !errors.Is(err, ErrNotBanned) {
		t.Errorf("Unban of an expired ban: %v, want ErrNotBanned", err)
	}
	// Banning it again works although the mirror still remembers it.
	mustBan(t, n, "sshd", "192.0.2.7", time.Hour)
	mustFlush(t, n)
	if got := strings.Join(prefixes(elementsOf(t, n, "sshd")), " "); got != "192.0.2.7/32 192.0.2.8/32" {
		t.Errorf("after re-ban: %s", got)
	}
}

func TestHealDefaultInterval(t *testing.T) {
	n, ns := newTestNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "192.0.2.7", time.Hour)
	mustFlush(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	nft(t, ns, "flush ruleset")
	start := time.Now()
	got := -1
	n.Heal(ctx, func(c int) { got = c; cancel() })
	if got != 1 {
		t.Fatalf("not restored within 8s with the default 5s interval (restored = %d)", got)
	}
	t.Logf("restored after %v with the default interval", time.Since(start))
	if out := nft(t, ns, "list", "set", "inet", "gaoler", "sshd_v4"); !strings.Contains(out, "192.0.2.7 timeout") {
		t.Errorf("after heal:\n%s", out)
	}
}

// TestUpgradeFromIntervalLayout starts on a table as gaoler 0.1 left it, with addresses and prefixes
// together in the interval sets "<jail>_v4" and "<jail>_v6": Setup adopts every ban with its
// remaining time and moves it to the current layout in the same transaction that rebuilds the table.
func TestUpgradeFromIntervalLayout(t *testing.T) {
	n, ns := newTestNFTables(t)
	nft(t, ns, "-f", "-", `table inet gaoler {
	set sshd_v4 { type ipv4_addr; flags interval,timeout; elements = { 192.0.2.7 timeout 10m, 10.0.0.0/8 timeout 1h } }
	set sshd_v6 { type ipv6_addr; flags interval,timeout; elements = { 2001:db8::7 timeout 20m, 2001:db8:1::/64 timeout 2h } }
	chain input {
		type filter hook input priority filter; policy accept;
		meta nfproto ipv4 tcp dport 22 ip saddr @sshd_v4 counter reject with tcp reset comment "gaoler jail sshd ipv4"
		meta nfproto ipv6 tcp dport 22 ip6 saddr @sshd_v6 counter reject with tcp reset comment "gaoler jail sshd ipv6"
	}
}`)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	checkRemaining(t, remaining(t, n, "sshd", time.Now()), map[string]time.Duration{
		"192.0.2.7/32": 10 * time.Minute, "10.0.0.0/8": time.Hour,
		"2001:db8::7/128": 20 * time.Minute, "2001:db8:1::/64": 2 * time.Hour,
	}, 3*time.Second)
	for set, want := range map[string]string{
		"sshd_v4": "flags timeout", "sshd_v4_net": "10.0.0.0/8 timeout 1h",
		"sshd_v6": "2001:db8::7 timeout 20m", "sshd_v6_net": "2001:db8:1::/64 timeout 2h",
	} {
		if got := nft(t, ns, "list", "set", "inet", "gaoler", set); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", set, want, got)
		}
	}
	if got := nft(t, ns, "list", "set", "inet", "gaoler", "sshd_v4"); !strings.Contains(got, "192.0.2.7 timeout 10m") {
		t.Errorf("sshd_v4 lacks the address:\n%s", got)
	}
	n.mu.Lock()
	broken, err := n.damaged(n.conn, n.jails)
	n.mu.Unlock()
	if broken || err != nil {
		t.Errorf("damaged() = %v, %v after the upgrade", broken, err)
	}
}
