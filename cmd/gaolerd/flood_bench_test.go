package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/internal/testenv"
)

// BenchmarkFlood floods gaolerd, with the shipped defaults (maxretry 5, findtime 10m), with
// GAOLER_BENCH_FLOOD (default 200,000) distinct offenders, each failing 5 times, interleaved (every
// offender fails once, then every offender a second time, ...), through a real journald, and counts
// the bans in the kernel's sets: every offender must be banned, none lost to eviction. Meanwhile it
// samples gaolerd's anonymous RSS (the peak is reported) and reads a jail property over the bus every
// 100 ms (the slowest reply is reported; a failed call fails the benchmark).
//
// The flood goes to a private journald (testenv.PrivateJournald) so that a million entries do not
// land in the journal every other test on the machine reads. The documentation ranges hold fewer
// than 200,000 IPv4 addresses: the offenders are the 131,072 IPv4 addresses of the benchmarking range
// 198.18.0.0/15 (RFC 2544), then IPv6 addresses of 2001:db8::/32, each in a /64 of its own (IPv6 windows
// cost more: the memory figure errs high).
func BenchmarkFlood(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireCommand(b, "nft")
	n := 200_000
	if v := os.Getenv("GAOLER_BENCH_FLOOD"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for range b.N {
		flood(b, n)
	}
}

func floodAddr(site uint8, i int) netip.Addr {
	if i < 1<<17 {
		return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
	}
	i -= 1 << 17 // 2001:db8:SSII:IIII::1, a /64 each
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(site), byte(i >> 16), byte(i >> 8), byte(i), 15: 1})
}

func flood(b *testing.B, n int) {
	jd := testenv.PrivateJournald(b)
	busAddr := testenv.SystemBus(b)
	ns, _ := testenv.NetNS(b)
	cfg, _ := testConfig(b, fmt.Sprintf("[journal]\ndirectory = %q\n\n[jail.sshd]\nenabled = true\n", jd.Dir))
	d := startDaemon(b, ns, cfg, "DBUS_SYSTEM_BUS_ADDRESS="+busAddr)
	d.waitReady(b, ns)
	pid := d.cmd.Process.Pid
	conn, err := dbus.Connect(busAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	jail := conn.Object("io.github.gaoler.Gaoler1", "/io/github/gaoler/Gaoler1/jail/sshd")
	banned := func() (uint32, error) {
		v, err := jail.GetProperty("io.github.gaoler.Gaoler1.Jail.CurrentlyBanned")
		if err != nil {
			return 0, err
		}
		c, _ := v.Value().(uint32)
		return c, nil
	}
	if !waitFor(15*time.Second, func() bool { _, err := banned(); return err == nil }) {
		b.Fatalf("gaolerd did not take its bus name:\n%s", d.output())
	}

	// The watcher: RSS and a bus call every 100 ms until stop.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peakKiB int
	var slowest time.Duration
	var busErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			peakKiB = max(peakKiB, rssAnon(b, pid))
			t0 := time.Now()
			if _, err := banned(); err != nil && busErr == nil {
				busErr = err
			}
			slowest = max(slowest, time.Since(t0))
		}
	}()

	sender := testenv.StartSender(b, jd.Socket, "sshd")
	site := uint8(rand.IntN(0xff))
	start := time.Now()
	cpu0 := cpuTime(b, pid)
	b.ResetTimer()
	for round := range 5 {
		for i := range n {
			if err := sender.Send(sshdFailure(floodAddr(site, i), "root", 1000+round)); err != nil {
				b.Fatal(err)
			}
		}
	}
	sender.Close()
	sent := time.Since(start)
	var got uint32
	if !waitFor(5*time.Minute, func() bool { got, _ = banned(); return int(got) >= n }) {
		b.Errorf("%d of %d offenders banned (bus) 5 minutes after the flood", got, n)
	}
	done := time.Since(start)
	cpu := cpuTime(b, pid) - cpu0
	b.StopTimer()
	close(stop)
	wg.Wait()
	if busErr != nil {
		b.Errorf("a bus call failed during the flood: %v", busErr)
	}
	inKernel := countElements(b, ns, "sshd_v4") + countElements(b, ns, "sshd_v6")
	if inKernel < n {
		b.Errorf("%d of %d offenders banned in the kernel's sets", inKernel, n)
		missedOffenders(b, ns, jd.Dir, site, n)
	}
	b.ReportMetric(float64(inKernel), "banned-in-kernel")
	b.ReportMetric(float64(n), "offenders")
	b.ReportMetric(float64(peakKiB)/1024, "peak-rss-anon-MiB")
	b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-bus-reply-ms")
	b.ReportMetric(float64(5*n)/sent.Seconds(), "sent-entries/s")
	b.ReportMetric(done.Seconds(), "flood-to-last-ban-s")
	b.ReportMetric(float64(5*n)/cpu.Seconds(), "entries/cpu-s")
	d.stop(b, syscall.SIGTERM)
}

// countElements returns how many elements the set holds in namespace ns.
// missedOffenders reports the offenders the kernel's sets lack (at most ten), each with the number of
// its failures the journal holds: fewer than 5 is journald's loss, 5 is gaolerd's.
func missedOffenders(b testing.TB, ns, dir string, site uint8, n int) {
	in := make(map[netip.Addr]bool, n)
	for _, set := range []string{"sshd_v4", "sshd_v6"} {
		out, err := testenv.NSRun(ns, "nft", "list", "set", "inet", "gaoler", set)
		if err != nil {
			b.Fatalf("nft list set %s: %v", set, err)
		}
		for _, f := range strings.FieldsFunc(out, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' || r == '{' || r == '}' }) {
			if a, err := netip.ParseAddr(f); err == nil {
				in[a] = true
			}
		}
	}
	missed := 0
	for i := range n {
		a := floodAddr(site, i)
		if in[a] {
			continue
		}
		out, _ := exec.Command("journalctl", "-D", dir, "-o", "cat", "--grep", "from "+a.String()+" port").Output()
		b.Errorf("offender %d, %s: not banned; the journal holds %d of its 5 failures", i, a, strings.Count(string(out), "\n"))
		if missed++; missed == 10 {
			return
		}
	}
}

func countElements(b testing.TB, ns, set string) int {
	out, err := testenv.NSRun(ns, "nft", "-j", "list", "set", "inet", "gaoler", set)
	if err != nil {
		b.Fatalf("nft list set %s: %v", set, err)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		b.Fatalf("nft -j: %v", err)
	}
	for _, obj := range doc.Nftables {
		if raw, ok := obj["set"]; ok {
			var s struct {
				Elem []json.RawMessage `json:"elem"`
			}
			json.Unmarshal(raw, &s)
			return len(s.Elem)
		}
	}
	return 0
}
