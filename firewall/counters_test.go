package firewall

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

func TestJailOfComment(t *testing.T) {
	for comment, want := range map[string]string{
		"gaoler jail sshd ipv4":          "sshd",
		"gaoler jail sshd ipv6 prefixes": "sshd",
		"gaoler jail nginx-auth ipv4":    "nginx-auth",
		"gaoler jail":                    "",
		"gaoler jail sshd":               "",
		"someone else's rule":            "",
	} {
		got, ok := jailOfComment(comment)
		if got != want || ok != (want != "") {
			t.Errorf("jailOfComment(%q) = %q, %v; want %q", comment, got, ok, want)
		}
	}
}

// TestCountersInKernel bans the attacker's addresses, one as an address and one inside a banned
// prefix, sends refused connections from each, and reads the jail's counters back: what the kernel's
// rule counters hold, summed over the hash and the interval sets' rules.
func TestCountersInKernel(t *testing.T) {
	testenv.RequireCommand(t, "nft")
	pair := testenv.NetNSPair(t)
	n, err := NewNFTables("gaoler", WithNetNSFd(pair.ServerFd))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Setup([]JailRules{
		{Name: "ssh", Protocol: "tcp", Ports: []PortRange{{22, 22}}, BlockType: "reject"},
		{Name: "web", Protocol: "tcp", Ports: []PortRange{{80, 80}}, BlockType: "reject"},
	}); err != nil {
		t.Fatal(err)
	}
	c, err := n.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c["ssh"] != (Counter{}) || c["web"] != (Counter{}) || len(c) != 2 {
		t.Fatalf("before any packet: %+v", c)
	}
	listen(t, pair.Server, 22)
	mustBan(t, n, "ssh", pair.AttackerV4.String()+"/32", time.Hour)
	mustBan(t, n, "ssh", "2001:db8::/64", time.Hour) // holds the attacker's IPv6 address
	mustFlush(t, n)
	for _, addr := range []netip.Addr{pair.ServerV4, pair.ServerV6} {
		if err := dial(t, pair.Attacker, addr, 22, 300*time.Millisecond); err == nil {
			t.Fatalf("%v port 22 reachable from a banned address", addr)
		}
	}
	c, err = n.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c["ssh"].Packets < 2 || c["ssh"].Bytes == 0 {
		t.Fatalf("ssh counters after two refused connections: %+v", c["ssh"])
	}
	if c["web"] != (Counter{}) {
		t.Fatalf("web counted packets it did not block: %+v", c["web"])
	}
	// Cross-check with what nft prints for the jail's rules.
	out := nft(t, pair.Server, "list", "chain", "inet", "gaoler", "input")
	if !strings.Contains(out, "counter packets") {
		t.Fatalf("nft shows no counters:\n%s", out)
	}
}

// BenchmarkCounters is what a metrics scrape asks of the kernel: the jails' rule counters, read with
// one rule dump per chain, with no bans and with 100,000 bans in the sets; the two cost the same, since
// no set is walked.
func BenchmarkCounters(b *testing.B) {
	testenv.RequireRoot(b)
	for _, bans := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("bans=%d", bans), func(b *testing.B) {
			_, fd := testenv.NetNS(b)
			n, err := NewNFTables("gaoler", WithNetNSFd(fd))
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			if err := n.Setup([]JailRules{sshd}); err != nil {
				b.Fatal(err)
			}
			v4, v6 := bulk(bans / 2)
			for _, p := range append(v4, v6...) {
				if err := n.Ban("sshd", p, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			if err := n.Flush(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := n.Counters(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
