package firewall

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// BenchmarkBulk100k bans 100,000 addresses (50,000 IPv4 and 50,000 IPv6) in one Flush, and, in the
// same run, loads the same elements with one `nft -f` file, reporting both rates.
func BenchmarkBulk100k(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireCommand(b, "nft")
	v4, v6 := bulk(50_000)
	var file strings.Builder
	for _, set := range []struct {
		name string
		ps   []string
	}{{"sshd_v4", nil}, {"sshd_v6", nil}} {
		fmt.Fprintf(&file, "add element inet gaoler %s { ", set.name)
		src := v4
		if set.name == "sshd_v6" {
			src = v6
		}
		for i, p := range src {
			if i > 0 {
				file.WriteString(", ")
			}
			fmt.Fprintf(&file, "%s timeout 1h", p.Addr())
		}
		file.WriteString(" }\n")
	}
	path := filepath.Join(b.TempDir(), "bans.nft")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		b.Fatal(err)
	}

	var ours, theirs time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns, fd := testenv.NetNS(b)
		n, err := NewNFTables("gaoler", WithNetNSFd(fd))
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Setup([]JailRules{sshd}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		for j := range v4 {
			if err := n.Ban("sshd", v4[j], time.Hour); err != nil {
				b.Fatal(err)
			}
			if err := n.Ban("sshd", v6[j], time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		if err := n.Flush(); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		b.StopTimer()

		// The same elements with nft, into a fresh table of the same layout.
		if err := n.DeleteTable(); err != nil {
			b.Fatal(err)
		}
		if err := n.Setup([]JailRules{sshd}); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		testenv.NSExec(b, ns, "nft", "-f", path)
		theirs += time.Since(start)
		n.Close()
	}
	b.ReportMetric(float64(100_000*b.N)/ours.Seconds(), "bans/s")
	b.ReportMetric(float64(100_000*b.N)/theirs.Seconds(), "nft-f-bans/s")
}

// BenchmarkBan measures one ban as the daemon makes it: Ban, then Flush (one netlink transaction),
// with 10,000 bans already in the sets (GAOLER_BENCH_PRELOAD=N: 2N). Single addresses go to hash sets,
// whose commit hardly grows with their size: measured on 6.18 on a busy shared machine, 20-50 us
// empty, 150 us at 100,000 elements, where the interval sets of gaoler 0.1 took ~20 ms (the rbtree's
// commit grows with its size; prefix bans still go to interval sets, which stay small).
func BenchmarkBan(b *testing.B) {
	testenv.RequireRoot(b)
	_, fd := testenv.NetNS(b)
	n, err := NewNFTables("gaoler", WithNetNSFd(fd))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	if err := n.Setup([]JailRules{sshd}); err != nil {
		b.Fatal(err)
	}
	pre := 5_000 // IPv4 and IPv6 each; GAOLER_BENCH_PRELOAD overrides
	if v, err := strconv.Atoi(os.Getenv("GAOLER_BENCH_PRELOAD")); err == nil {
		pre = v
	}
	v4, v6 := bulk(pre + b.N)
	for j := 0; j < pre; j++ {
		n.Ban("sshd", v4[j], time.Hour)
		n.Ban("sshd", v6[j], time.Hour)
	}
	if err := n.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := n.Ban("sshd", v4[pre+i], time.Hour); err != nil {
			b.Fatal(err)
		}
		if err := n.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
