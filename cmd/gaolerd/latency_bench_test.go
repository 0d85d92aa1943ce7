package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/sdjournal"

	"github.com/gaoler/gaoler/internal/testenv"
)

// BenchmarkBanLatency measures the time from an sshd failure written to journald's socket to the
// kernel set element, as `nft monitor` in the daemon's namespace reports it: 300 addresses, one failure
// each with maxretry = 1, 10 ms apart. In the same run, a bare go-systemd loop blocking in
// sd_journal_wait reads the same entries: the reference every journal reader pays without an adaptive
// wait. It also reports the cold latency of the first failure after a quiet spell
// (GAOLER_BENCH_QUIET, default 60s), the CPU the hot mode costs, and the daemon's CPU and anonymous
// memory once it is idle again.
func BenchmarkBanLatency(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.Journald(b)
	testenv.RequireCommand(b, "nft")
	quiet := 60 * time.Second
	if v := os.Getenv("GAOLER_BENCH_QUIET"); v != "" {
		quiet, _ = time.ParseDuration(v)
	}
	ns, _ := testenv.NetNS(b)
	cfg, _ := testConfig(b, "[defaults]\nmaxretry = 1\nbantime = \"1h\"\n\n[jail.sshd]\nenabled = true\n")
	d := startDaemon(b, ns, cfg)
	d.waitReady(b, ns)
	pid := d.cmd.Process.Pid

	mon := startMonitor(b, ns)
	bare := startBareReader(b)
	sender := testenv.StartSender(b, testenv.JournalSocket, "sshd")
	site := uint16(rand.IntN(0xffff))
	addr := func(i int) netip.Addr { return spreadAddr(site, i) }

	// Cold: the first failure after a quiet spell, with the reader blocked in sd_journal_wait.
	time.Sleep(quiet)
	coldAt := time.Now()
	sender.Send(sshdFailure(addr(0), "root", 1))
	cold, ok := mon.wait(addr(0), 5*time.Second)
	if !ok {
		b.Fatalf("cold failure not banned within 5s:\n%s", d.output())
	}
	coldLatency := cold.Sub(coldAt)

	// Hot: 300 failures 10 ms apart.
	const n = 300
	cpu0 := cpuTime(b, pid)
	sentAt := make([]time.Time, n)
	b.ResetTimer()
	for i := 0; i < n; i++ {
		sentAt[i] = time.Now()
		sender.Send(sshdFailure(addr(i+1), "root", 2))
		time.Sleep(10 * time.Millisecond)
	}
	var lat, bareLat []time.Duration
	for i := 0; i < n; i++ {
		at, ok := mon.wait(addr(i+1), 5*time.Second)
		if !ok {
			b.Fatalf("%s not banned within 5s", addr(i+1))
		}
		lat = append(lat, at.Sub(sentAt[i]))
		if at, ok := bare.wait(addr(i+1), 5*time.Second); ok {
			bareLat = append(bareLat, at.Sub(sentAt[i]))
		}
	}
	b.StopTimer()
	burst := time.Since(sentAt[0])
	hotCPU := cpuTime(b, pid) - cpu0

	// Idle: after the hold time the reader blocks again and costs nothing.
	time.Sleep(32 * time.Second)
	cpu1 := cpuTime(b, pid)
	const idleFor = 20 * time.Second
	time.Sleep(idleFor)
	idleCPU := cpuTime(b, pid) - cpu1

	b.ReportMetric(pct(lat, 50), "p50-ms")
	b.ReportMetric(pct(lat, 99), "p99-ms")
	b.ReportMetric(pct(lat, 100), "max-ms")
	b.ReportMetric(pct(bareLat, 50), "bare-wait-p50-ms")
	b.ReportMetric(pct(bareLat, 99), "bare-wait-p99-ms")
	b.ReportMetric(float64(coldLatency.Microseconds())/1000, "cold-ms")
	b.ReportMetric(100*hotCPU.Seconds()/burst.Seconds(), "hot-cpu-%")
	b.ReportMetric(100*idleCPU.Seconds()/idleFor.Seconds(), "idle-cpu-%")
	b.ReportMetric(float64(rssAnon(b, pid))/1024, "idle-rss-anon-MiB")
	sender.Close()
	d.stop(b, syscall.SIGTERM)
}

func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return -1
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return float64(s[i].Microseconds()) / 1000
}

// seenLog records when each address was first seen, and lets a caller wait for one.
type seenLog struct {
	mu   sync.Mutex
	seen map[netip.Addr]time.Time
}

func (l *seenLog) mark(a netip.Addr, at time.Time) {
	l.mu.Lock()
	if _, ok := l.seen[a]; !ok {
		l.seen[a] = at
	}
	l.mu.Unlock()
}

func (l *seenLog) wait(a netip.Addr, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		at, ok := l.seen[a]
		l.mu.Unlock()
		if ok {
			return at, true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, false
}

// startMonitor runs `nft monitor` in ns and records when each added element appears.
func startMonitor(b testing.TB, ns string) *seenLog {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "monitor", "elements")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	l := &seenLog{seen: map[netip.Addr]time.Time{}}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			now := time.Now()
			line := sc.Text()
			if !strings.HasPrefix(line, "add element") {
				continue
			}
			for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '{' || r == '}' || r == ',' }) {
				if a, err := netip.ParseAddr(f); err == nil {
					l.mark(a, now)
				}
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // let the monitor subscribe
	return l
}

// startBareReader is the reference: go-systemd's sdjournal following the journal from its tail and
// blocking in sd_journal_wait, recording when each sshd failure's address is first read.
func startBareReader(b *testing.B) *seenLog {
	j, err := sdjournal.NewJournal()
	if err != nil {
		b.Fatal(err)
	}
	j.AddMatch("_COMM=sshd")
	j.SeekTail()
	j.Previous()
	l := &seenLog{seen: map[netip.Addr]time.Time{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := j.Next()
			if err != nil {
				return
			}
			if n == 0 {
				j.Wait(200 * time.Millisecond)
				continue
			}
			msg, _ := j.GetDataValue("MESSAGE")
			now := time.Now()
			if i := strings.LastIndex(msg, " from "); i >= 0 {
				rest := strings.Fields(msg[i+6:])
				if len(rest) > 0 {
					if a, err := netip.ParseAddr(rest[0]); err == nil {
						l.mark(a, now)
					}
				}
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-done; j.Close() })
	return l
}

// cpuTime returns the CPU time pid's threads have used, to the nanosecond: the sum of the first
// field of /proc/PID/task/*/schedstat (the clock ticks of /proc/PID/stat are 10 ms coarse).
func cpuTime(b testing.TB, pid int) time.Duration {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("no schedstat for pid %d: %v", pid, err)
	}
	var total int64
	for _, p := range tasks {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that just ended
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += ns
		}
	}
	return time.Duration(total)
}

// rssAnon returns the anonymous resident memory of pid in KiB.
func rssAnon(b testing.TB, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "RssAnon:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return kb
		}
	}
	return -1
}
