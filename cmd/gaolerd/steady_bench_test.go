package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// BenchmarkSteady feeds gaolerd (shipped defaults) a steady 10,000 sshd lines a second for
// GAOLER_BENCH_STEADY (default 60s), 1% of them failures, each from a fresh address (none reaches
// maxretry: the reader stays cold, woken by journald), the rest ordinary sshd lines, through a private
// journald, and reports gaolerd's CPU as % of one core. The goal is under 5%.
func BenchmarkSteady(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireCommand(b, "nft")
	dur := 60 * time.Second
	if v := os.Getenv("GAOLER_BENCH_STEADY"); v != "" {
		dur, _ = time.ParseDuration(v)
	}
	for range b.N {
		steady(b, dur)
	}
}

func steady(b *testing.B, dur time.Duration) {
	jd := testenv.PrivateJournald(b)
	ns, _ := testenv.NetNS(b)
	cfg, _ := testConfig(b, fmt.Sprintf("[journal]\ndirectory = %q\n\n[jail.sshd]\nenabled = true\n", jd.Dir))
	d := startDaemon(b, ns, cfg)
	d.waitReady(b, ns)
	pid := d.cmd.Process.Pid
	sender := testenv.StartSender(b, jd.Socket, "sshd")
	site := uint16(rand.IntN(0xffff))
	ordinary := []string{
		"pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
		"pam_unix(sshd:session): session closed for user alice",
		"Server listening on 0.0.0.0 port 22.",
		"Received SIGHUP; restarting.",
	}
	const perTick, tick = 100, 10 * time.Millisecond // 10,000 lines a second
	time.Sleep(time.Second)
	cpu0 := cpuTime(b, pid)
	start := time.Now()
	lines, failures := 0, 0
	b.ResetTimer()
	for k := 0; time.Since(start) < dur; k++ {
		for i := range perTick {
			if i == 0 { // 1 in 100
				sender.Send(sshdFailure(spreadAddr(site, failures), "root", 22))
				failures++
			} else {
				sender.Send(map[string]string{"MESSAGE": ordinary[i%len(ordinary)], "SYSLOG_IDENTIFIER": "sshd"})
			}
			lines++
		}
		time.Sleep(time.Until(start.Add(time.Duration(k+1) * tick)))
	}
	elapsed := time.Since(start)
	time.Sleep(time.Second) // the last batch
	cpu := cpuTime(b, pid) - cpu0
	b.StopTimer()
	sender.Close()
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "gaolerd-cpu-%")
	b.ReportMetric(float64(lines)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(failures), "failures")
	d.stop(b, syscall.SIGTERM)
}
