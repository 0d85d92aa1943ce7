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
	"github.com/google/nftables"

	"github.com/gaoler/gaoler/daemon"
	"github.com/gaoler/gaoler/internal/testenv"
	"github.com/gaoler/gaoler/jails"
)

// BenchmarkBanLatency measures the time from an sshd failure written to journald's socket to the
// kernel set element, as `nft monitor` in the daemon's namespace reports it: 300 addresses, one failure
// each with maxretry = 1, 10 ms apart, into empty sets. Side by side in the same run, on the same
// entries:
//   - ref-*: the bare reference loop (see startReferenceLoop): sd-journal polled every millisecond,
//     one google/nftables ban per entry into a hash set of its own namespace, timed by its own
//     `nft monitor`. Issue 18's goal: gaolerd's p99 <= 1.25x the loop's;
//   - bare-wait-*: a go-systemd loop blocking in sd_journal_wait, the latency any journal reader has
//     without polling (journald coalesces its notifications).
//
// It also reports the cold latency of the first failure after a quiet spell (GAOLER_BENCH_QUIET,
// default 60s), the CPU the hot mode costs, and the daemon's CPU and anonymous memory once it is idle
// again. The machine's other load shows in every figure: compare gaolerd with the references of the
// same run, and repeat (-count).
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
	ref := startReferenceLoop(b, 0)
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
	cpu0 := cpuTime(b, pid)
	b.ResetTimer()
	r := hotBans(b, sender, func(i int) netip.Addr { return addr(i + 1) }, mon, ref, bare)
	b.StopTimer()
	hotCPU := cpuTime(b, pid) - cpu0

	// Idle: after the hold time the reader blocks again and costs nothing.
	time.Sleep(32 * time.Second)
	cpu1 := cpuTime(b, pid)
	const idleFor = 20 * time.Second
	time.Sleep(idleFor)
	idleCPU := cpuTime(b, pid) - cpu1

	r.report(b)
	b.ReportMetric(float64(coldLatency.Microseconds())/1000, "cold-ms")
	b.ReportMetric(100*hotCPU.Seconds()/r.burst.Seconds(), "hot-cpu-%")
	b.ReportMetric(100*idleCPU.Seconds()/idleFor.Seconds(), "idle-cpu-%")
	b.ReportMetric(float64(rssAnon(b, pid))/1024, "idle-rss-anon-MiB")
	sender.Close()
	d.stop(b, syscall.SIGTERM)
}

// BenchmarkBanLatency100k is BenchmarkBanLatency's hot phase with 100,000 other bans already in the
// jail's sets (GAOLER_BENCH_PRELOAD overrides the number), in the daemon's state as well as in the
// kernel: gaolerd starts from a checkpoint holding them and restores them into its table, as after a
// restart under a large attack (restoring is silent, so no 100,000 log entries crowd the journal). The
// reference loop's set holds as many elements. Issue 18's goal: gaolerd's p99 <= 5 ms.
func BenchmarkBanLatency100k(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.Journald(b)
	testenv.RequireCommand(b, "nft")
	preload := benchPreload()
	p := startPreloaded(b, preload, true)
	d, fd, mon := p.d, p.fd, p.mon
	b.Logf("%d bans restored in %v", preload, p.took)

	ref := startReferenceLoop(b, preload)
	sender := testenv.StartSender(b, testenv.JournalSocket, "sshd")
	// Each measured address in a /64 of its own, outside the preload's /44: 17 failing addresses
	// of one /64 would ban the /64 (ipv6_subnet_limit), and their own elements would never come.
	site := p.measureSite()
	addr := func(i int) netip.Addr { return spreadAddr(site, i) }
	// One failure first, so that the hot phase starts with the reader polling, as in
	// BenchmarkBanLatency after its cold failure.
	sender.Send(sshdFailure(addr(0), "root", 1))
	if _, ok := mon.wait(addr(0), 10*time.Second); !ok {
		b.Fatalf("first failure not banned within 10s:\n%s", d.output())
	}
	b.ResetTimer()
	r := hotBans(b, sender, func(i int) netip.Addr { return addr(i + 1) }, mon, ref, nil)
	b.StopTimer()
	r.report(b)
	b.ReportMetric(float64(countBans(b, fd, "sshd_v6")), "bans-in-set")
	b.ReportMetric(float64(rssAnon(b, d.cmd.Process.Pid))/1024, "rss-anon-MiB")
	sender.Close()
	d.stop(b, syscall.SIGTERM)
}

// latencies are the hot phase's results: gaolerd's, the reference loop's and (if measured) the
// blocking reader's, each from a failure's send to its address's appearance.
type latencies struct {
	gaoler, ref, bareWait []time.Duration
	sent                  []time.Duration // when each failure was sent, since the first
	burst                 time.Duration
}

// hotBans sends 300 failures 10 ms apart, from addr(0) to addr(299), and collects when each address
// reached the kernel as mon (gaolerd's namespace) and ref (the reference loop's) saw it, and when the
// blocking reader bare (if not nil) read it. ref may be nil too.
func hotBans(b *testing.B, sender *testenv.Sender, addr func(int) netip.Addr, mon, ref, bare *seenLog) latencies {
	const n = 300
	sentAt := make([]time.Time, n)
	for i := 0; i < n; i++ {
		sentAt[i] = time.Now()
		sender.Send(sshdFailure(addr(i), "root", 2))
		time.Sleep(10 * time.Millisecond)
	}
	var r latencies
	for i := 0; i < n; i++ {
		at, ok := mon.wait(addr(i), 5*time.Second)
		if !ok {
			b.Fatalf("%s not banned within 5s", addr(i))
		}
		r.gaoler = append(r.gaoler, at.Sub(sentAt[i]))
		if ref != nil {
			if at, ok := ref.wait(addr(i), 5*time.Second); ok {
				r.ref = append(r.ref, at.Sub(sentAt[i]))
			}
		}
		if bare != nil {
			if at, ok := bare.wait(addr(i), 5*time.Second); ok {
				r.bareWait = append(r.bareWait, at.Sub(sentAt[i]))
			}
		}
	}
	for _, at := range sentAt {
		r.sent = append(r.sent, at.Sub(sentAt[0]))
	}
	r.burst = time.Since(sentAt[0])
	return r
}

// slowest describes the n slowest of gaolerd's bans with when their failures were sent: a tail that
// recurs at a fixed period points at a timer (the checkpoint is taken every second, Heal's check
// every 5 s).
func (r latencies) slowest(n int) string {
	idx := make([]int, len(r.gaoler))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return r.gaoler[idx[a]] > r.gaoler[idx[b]] })
	var out []string
	for _, i := range idx[:min(n, len(idx))] {
		out = append(out, fmt.Sprintf("%.1f ms at +%d ms", float64(r.gaoler[i].Microseconds())/1000, r.sent[i].Milliseconds()))
	}
	return strings.Join(out, ", ")
}

func (r latencies) report(b *testing.B) {
	b.Logf("slowest bans: %s", r.slowest(8))
	b.ReportMetric(pct(r.gaoler, 50), "p50-ms")
	b.ReportMetric(pct(r.gaoler, 99), "p99-ms")
	b.ReportMetric(pct(r.gaoler, 100), "max-ms")
	b.ReportMetric(pct(r.ref, 50), "ref-p50-ms")
	b.ReportMetric(pct(r.ref, 99), "ref-p99-ms")
	b.ReportMetric(pct(r.ref, 100), "ref-max-ms")
	if p := pct(r.ref, 99); p > 0 {
		b.ReportMetric(pct(r.gaoler, 99)/p, "p99/ref-p99")
	}
	if r.bareWait != nil {
		b.ReportMetric(pct(r.bareWait, 50), "bare-wait-p50-ms")
		b.ReportMetric(pct(r.bareWait, 99), "bare-wait-p99-ms")
	}
}

// countBans counts the elements of one of gaolerd's sets in the namespace fd refers to, over netlink:
// `nft -j list set` takes minutes for 100,000 elements.
func countBans(b testing.TB, fd int, set string) int {
	conn, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		b.Fatal(err)
	}
	s, err := conn.GetSetByName(&nftables.Table{Name: "gaoler", Family: nftables.TableFamilyINet}, set)
	if err != nil {
		return 0
	}
	elems, err := conn.GetSetElements(s)
	if err != nil {
		return 0
	}
	return len(elems)
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

// waitCount waits until n addresses were seen.
func (l *seenLog) waitCount(n int, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		l.mu.Lock()
		seen := len(l.seen)
		l.mu.Unlock()
		if seen >= n {
			return true
		}
	}
	return false
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
			if a, ok := failureAddr(msg); ok {
				l.mark(a, time.Now())
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-done; j.Close() })
	return l
}

// startReferenceLoop is issue 18's bare reference for ban latency: sd-journal polled every
// millisecond (sd_journal_wait with a 1 ms timeout, reading every new entry with _COMM=sshd), and for
// each entry one google/nftables transaction adding its address to a hash set with a timeout
// (`flags timeout`, as gaolerd's sshd_v6), in a namespace of its own holding preload other elements.
// It returns when each address appeared in the kernel, as `nft monitor` in that namespace reports it.
func startReferenceLoop(b *testing.B, preload int) *seenLog {
	ns, fd := testenv.NetNS(b)
	mon := startMonitor(b, ns) // before the preload: see BenchmarkBanLatency100k
	conn, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(fd))
	if err != nil {
		b.Fatal(err)
	}
	table := conn.AddTable(&nftables.Table{Name: "reference", Family: nftables.TableFamilyINet})
	set := &nftables.Set{Table: table, Name: "sshd_v6", KeyType: nftables.TypeIP6Addr, HasTimeout: true}
	if err := conn.AddSet(set, nil); err != nil {
		b.Fatal(err)
	}
	var elems []nftables.SetElement
	for i := 0; i < preload; i++ {
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}
		elems = append(elems, nftables.SetElement{Key: a[:], Timeout: time.Hour})
		if len(elems) == 1000 || i == preload-1 { // google/nftables' attribute length limit
			if err := conn.SetAddElements(set, elems); err != nil {
				b.Fatal(err)
			}
			elems = nil
		}
		if (i+1)%2000 == 0 || i == preload-1 { // a transaction that fits the default socket buffer
			if err := conn.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if !mon.waitCount(preload, 5*time.Minute) { // see BenchmarkBanLatency100k
		b.Fatalf("nft monitor did not print the reference's %d elements within 5 minutes", preload)
	}

	j, err := sdjournal.NewJournal()
	if err != nil {
		b.Fatal(err)
	}
	j.AddMatch("_COMM=sshd")
	j.SeekTail()
	j.Previous()
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
				j.Wait(time.Millisecond)
				continue
			}
			msg, _ := j.GetDataValue("MESSAGE")
			a, ok := failureAddr(msg)
			if !ok || !a.Is6() {
				continue
			}
			conn.SetAddElements(set, []nftables.SetElement{{Key: a.AsSlice(), Timeout: time.Hour}})
			if err := conn.Flush(); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-done; j.Close(); conn.CloseLasting() })
	return mon
}

// failureAddr returns the address after the last " from " of an sshd failure message.
func failureAddr(msg string) (netip.Addr, bool) {
	i := strings.LastIndex(msg, " from ")
	if i < 0 {
		return netip.Addr{}, false
	}
	rest := strings.Fields(msg[i+6:])
	if len(rest) == 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(rest[0])
	return a, err == nil
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

// benchPreload is the number of bans the 100k benchmarks preload: GAOLER_BENCH_PRELOAD, or 100,000.
func benchPreload() int {
	if v, err := strconv.Atoi(os.Getenv("GAOLER_BENCH_PRELOAD")); err == nil {
		return v
	}
	return 100_000
}

// preloaded is a gaolerd started from a checkpoint of many bans, all of them in its sets.
type preloaded struct {
	d    *daemonProc
	ns   string
	fd   int        // the namespace, for countBans and setAddrs
	mon  *seenLog   // nft monitor in ns, when asked for
	base netip.Addr // the preload's /44: its offenders are one address in each of its /64s
	took time.Duration
}

// startPreloaded starts gaolerd (maxretry 1, bantime 1h, env added to its environment) from a
// checkpoint of preload bans of the sshd jail, one address in each of preload /64s of a random /44
// of 2001:db8::/32, banned a minute ago for an hour, and waits until the kernel has them all (and,
// with monitor, until `nft monitor` has printed them).
func startPreloaded(tb testing.TB, preload int, monitor bool, env ...string) preloaded {
	ns, fd := testenv.NetNS(tb)
	cfg, stateDir := testConfig(tb, "[defaults]\nmaxretry = 1\nbantime = \"1h\"\n\n[jail.sshd]\nenabled = true\n")
	base := netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::", rand.IntN(0xffff))).As16()
	base[5] &^= 0x0f
	now := time.Now()
	bans := make([]jails.Ban, preload)
	for i := range bans {
		a := base
		a[5] |= byte(i >> 16 & 0x0f)
		a[6], a[7], a[15] = byte(i>>8), byte(i), 1
		bans[i] = jails.Ban{Jail: "sshd", Prefix: netip.PrefixFrom(netip.AddrFrom16(a), 128),
			BannedAt: now.Add(-time.Minute), Expires: now.Add(time.Hour - time.Minute), Count: 1}
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		tb.Fatal(err)
	}
	cp := &daemon.Checkpoint{RealtimeUsec: uint64(now.UnixMicro()), SavedAt: now, Engine: jails.State{
		Version: jails.StateVersion,
		Jails:   []jails.JailState{{Name: "sshd", Bans: bans, LastEntry: now, TotalFailed: uint64(preload), TotalBanned: uint64(preload)}},
	}}
	if err := cp.Save(stateDir); err != nil {
		tb.Fatal(err)
	}
	p := preloaded{ns: ns, fd: fd, base: netip.AddrFrom16(base)}
	// nft monitor reads the whole ruleset when it starts, which takes it minutes with 100,000
	// elements: it starts before them, and sees them arrive.
	if monitor {
		p.mon = startMonitor(tb, ns)
	}
	start := time.Now()
	p.d = startDaemon(tb, ns, cfg, env...)
	p.d.waitReady(tb, ns) // the table is there; the restored bans follow in the next transaction
	loaded := func() bool { return countBans(tb, fd, "sshd_v6") >= preload }
	for deadline := time.Now().Add(2 * time.Minute); !loaded() && time.Now().Before(deadline); {
		time.Sleep(time.Second) // listing 100,000 elements costs the machine a fraction of a second
	}
	if !loaded() {
		tb.Fatalf("%d of the %d checkpointed bans in sshd_v6 after 2 minutes:\n%s", countBans(tb, fd, "sshd_v6"), preload, p.d.output())
	}
	// nft monitor prints the restored elements slowly: a ban measured while it still has a backlog
	// would be timed late.
	if monitor && !p.mon.waitCount(preload, 5*time.Minute) {
		tb.Fatalf("nft monitor did not print the %d restored bans within 5 minutes", preload)
	}
	p.took = time.Since(start)
	return p
}

// measureSite returns a random /48 of 2001:db8::/32 for spreadAddr outside the preload's /44.
func (p preloaded) measureSite() uint16 {
	b := p.base.As16()
	for {
		if site := uint16(rand.IntN(0xffff)); site != uint16(b[2])<<8|uint16(b[3]) {
			return site
		}
	}
}
