package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// BenchmarkTrickle measures what millisecond bans cost under the normal state of an internet-facing
// sshd, a trickle of failures (one every 2 s, each from a fresh address), for GAOLER_BENCH_TRICKLE
// (default 60s), on a private journald (testenv.PrivateJournald: the machine's journal carries the
// other engineers' tests, whose entries would move both processes' counts and feed gaolerd's jails):
//
//   - maxretry=1: every failure bans, so the reader is hot all the time. gaolerd's CPU is compared
//     with headerloop's (a bare Go loop that maps the active journal file's header and reads its
//     entry count every millisecond from a time.Ticker), run over the same minute: the cheapest
//     millisecond watch there is. Ban latency: each failure, journal to kernel (nft monitor).
//   - maxretry=5: the trickle's addresses fail once each and never come near a ban, while 3
//     attackers go on to 5 failures 2.5 s apart. gaolerd's CPU (as % of a core) and the latency of
//     each attacker's 5th failure.
//
// The machine is shared: both processes run at the same time, so they see the same noise.
func BenchmarkTrickle(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireCommand(b, "nft")
	dur := 60 * time.Second
	if v := os.Getenv("GAOLER_BENCH_TRICKLE"); v != "" {
		dur, _ = time.ParseDuration(v)
	}
	for _, c := range []struct {
		maxretry, attackers int
	}{{1, 0}, {5, 3}} {
		b.Run(fmt.Sprintf("maxretry=%d", c.maxretry), func(b *testing.B) {
			for range b.N {
				trickle(b, dur, c.maxretry, c.attackers)
			}
		})
	}
}

func trickle(b *testing.B, dur time.Duration, maxretry, attackers int) {
	jd := testenv.PrivateJournald(b)
	ns, _ := testenv.NetNS(b)
	cfg, _ := testConfig(b, fmt.Sprintf("[journal]\ndirectory = %q\n\n[defaults]\nmaxretry = %d\nbantime = \"1h\"\n\n[jail.sshd]\nenabled = true\n",
		jd.Dir, maxretry))
	d := startDaemon(b, ns, cfg)
	d.waitReady(b, ns)
	pid := d.cmd.Process.Pid
	mon := startMonitor(b, ns)
	sender := testenv.StartSender(b, jd.Socket, "sshd")
	defer sender.Close()
	site := uint16(rand.IntN(0xffff))
	fresh := func(i int) netip.Addr { return spreadAddr(site, i) }
	attacker := func(k int) netip.Addr { return spreadAddr(site^0x8000, k) }
	time.Sleep(2 * time.Second) // start-up settles

	ref := exec.Command(filepath.Join(binaries(b), "headerloop"), dur.String(), filepath.Join(jd.Dir, "system.journal"))
	var refOut strings.Builder
	ref.Stdout = &refOut
	if err := ref.Start(); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime(b, pid)
	start := time.Now()
	type sent struct {
		a  netip.Addr
		at time.Time
	}
	var banning []sent // failures that must ban
	// Attacker k starts at (k+1)/(attackers+1) of the first 3/4 of the run, with 5 failures 2.5 s apart.
	next := make([]time.Time, attackers)
	done := make([]int, attackers)
	for k := range next {
		next[k] = start.Add(time.Duration(k+1) * (dur * 3 / 4) / time.Duration(attackers+1))
	}
	b.ResetTimer()
	for i := 0; time.Since(start) < dur; i++ {
		tick := start.Add(time.Duration(i) * 2 * time.Second)
		for k := range next { // attackers due before this tick
			for done[k] < 5 && next[k].Before(tick) {
				time.Sleep(time.Until(next[k]))
				at := time.Now()
				sender.Send(sshdFailure(attacker(k), "root", 22))
				done[k]++
				if done[k] == maxretry {
					banning = append(banning, sent{attacker(k), at})
				}
				next[k] = next[k].Add(2500 * time.Millisecond)
			}
		}
		time.Sleep(time.Until(tick))
		at := time.Now()
		sender.Send(sshdFailure(fresh(i), "root", 22))
		if maxretry == 1 {
			banning = append(banning, sent{fresh(i), at})
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime(b, pid) - cpu0
	b.StopTimer()
	if err := ref.Wait(); err != nil {
		b.Fatalf("headerloop: %v", err)
	}
	refCPU := ref.ProcessState.UserTime() + ref.ProcessState.SystemTime()
	refElapsed := dur
	var lat []time.Duration
	for _, s := range banning {
		at, ok := mon.wait(s.a, 5*time.Second)
		if !ok {
			b.Fatalf("%s not banned within 5s:\n%s", s.a, d.output())
		}
		lat = append(lat, at.Sub(s.at))
	}
	moved, _ := strconv.Atoi(strings.TrimSpace(refOut.String()))
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "gaolerd-cpu-%")
	b.ReportMetric(100*refCPU.Seconds()/refElapsed.Seconds(), "headerloop-cpu-%")
	b.ReportMetric((cpu.Seconds()/elapsed.Seconds())/(refCPU.Seconds()/refElapsed.Seconds()), "gaolerd/headerloop")
	b.ReportMetric(pct(lat, 50), "ban-p50-ms")
	b.ReportMetric(pct(lat, 99), "ban-p99-ms")
	b.ReportMetric(pct(lat, 100), "ban-max-ms")
	b.ReportMetric(float64(len(lat)), "bans")
	b.Logf("%d bans; the journal's entry count moved %d times in %v (other writers included)", len(lat), moved, dur)
	d.stop(b, syscall.SIGTERM)
}
