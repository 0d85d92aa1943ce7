package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// The side-by-side benchmark: gaoler next to fail2ban and sshguard (Debian's packages, installed by
// scripts/rivals-deps.sh, which `make bench` runs) and the bare reference (banloop), each configured
// as an admin would for sshd on Debian 12, reading the live systemd journal, banning in nftables
// inside a network namespace of its own, with the same thresholds:
//
//   - gaoler: maxretry = 5, findtime = "10m", bantime = "1h" in gaoler.toml, the sshd jail enabled;
//   - fail2ban 1.0.2: jail.local with backend = systemd, banaction = nftables-multiport,
//     banaction_allports = nftables-allports, maxretry = 5, findtime = 10m, bantime = 1h, and the
//     stock sshd jail and filter (journalmatch _SYSTEMD_UNIT=sshd.service + _COMM=sshd); its socket,
//     pid file, log and database in a temp dir (fail2ban.local);
//   - sshguard 2.4.2: Debian's sshguard.conf (LOGREADER journalctl -afb -p info -n1 -t sshd -o cat,
//     BACKEND sshg-fw-nft-sets) with THRESHOLD=50, BLOCK_TIME=3600, DETECTION_TIME=600. sshguard
//     scores each failed password 10 and blocks once an address's score reaches THRESHOLD: 50 bans at
//     the 5th failure, as maxretry 5 does (Debian's default, 30, bans at the 3rd). Its pid file is in a
//     temp dir; the config file is bind-mounted over /etc/sshguard/sshguard.conf in the process's own
//     mount namespace (sshguard reads no other path);
//   - banloop (internal/bareloop/cmd/banloop): sd-journal polled every millisecond, a failure count
//     per address, one google/nftables ban into a hash set at the 5th: the least a banner can do.
//
// Each runs alone, in turn, in a cgroup of its own (its CPU is the cgroup's: sshguard is a pipeline of
// five processes, fail2ban forks nft for each ban), fed by the same attacks through the live journal
// ("sshd" entries from a root process whose executable is named sshd), on addresses of its own:
//
//   - warm-up: one attacker failing 5 times, which must be banned (it proves the tool is reading);
//     if it is not within 40 s, another (three at most);
//   - sparse: a fresh address failing once every 2 s for GAOLER_BENCH_RIVALS_SPARSE (default 30s), none
//     of which may be banned: sparse-cpu-%, the CPU an internet-facing sshd's background noise costs;
//   - idle: nothing sent for GAOLER_BENCH_RIVALS_IDLE (default 20s): idle-cpu-%. The live journal
//     carries the other tests of this machine (every tool sees the same kind of traffic, and sshd
//     failures of theirs can leave an address one failure from a ban, which makes gaolerd poll):
//     with GAOLER_BENCH_RIVALS_JOURNAL=private each tool reads a private journald instead
//     (testenv.PrivateJournald; fail2ban: backend = systemd[journalpath=DIR], sshguard: journalctl
//     -D DIR, gaolerd: [journal] directory), which only the benchmark writes to;
//   - paced: 20 attackers one after the other, each failing 5 times 200 ms apart: the latency from the
//     5th (banning) failure's send to the element in the kernel set, as `nft monitor` in the tool's
//     namespace reports it (paced-p50-ms, paced-p99-ms; with 20 bans the p99 is the slowest);
//   - burst: 100 attackers at once, 5 failures each, interleaved, sent as fast as journald takes them:
//     burst-bans/s, the bans divided by the time from the first failure to the last ban;
//   - memory after the bans: the resident memory of the tool's processes, summed from /proc
//     (rss-MiB: VmRSS, shared pages counted in each process; rss-anon-MiB: RssAnon).
//
// BenchmarkRivalsCatchUp measures the catch-up on the benchmark journal (see BenchmarkCatchUp).
func BenchmarkRivals(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.Journald(b)
	testenv.RequireCommand(b, "nft")
	for _, r := range rivals(b) {
		b.Run(r.name, func(b *testing.B) {
			for range b.N {
				sideBySide(b, r)
			}
		})
	}
}

// The thresholds every tool is given.
const (
	rivalMaxretry = 5
	rivalFindtime = 10 * time.Minute
	rivalBantime  = time.Hour
)

// rival is one banner of the side-by-side benchmark.
type rival struct {
	name string
	// start starts the tool inside namespace ns and cgroup cg, reading the journal files in dir (or
	// the machine's journal, with dir ""), and returns once it has set up its firewall.
	start func(b *testing.B, ns string, cg *cgroup, dir string) *treeProc
	// catchUp returns the CPU time the tool spends reading the sshd entries of the benchmark journal
	// in dir (entries of them, the last at lastUsec), and how many of them it read (all, unless it
	// had to be stopped).
	catchUp func(b *testing.B, dir string, entries int, lastUsec uint64) (time.Duration, int)
}

func rivals(b *testing.B) []rival {
	return []rival{
		{name: "gaoler", start: startGaolerRival, catchUp: func(b *testing.B, dir string, entries int, lastUsec uint64) (time.Duration, int) {
			return catchUpCPU(b, dir, lastUsec), entries
		}},
		{name: "sshguard", start: startSSHGuard, catchUp: sshguardCatchUp},
		{name: "fail2ban", start: startFail2ban, catchUp: fail2banCatchUp},
		{name: "bare", start: startBanloop, catchUp: func(b *testing.B, dir string, entries int, _ uint64) (time.Duration, int) {
			return bareProcessCPU(b, dir, entries), entries
		}},
	}
}

func sideBySide(b *testing.B, r rival) {
	sparseFor := envDuration("GAOLER_BENCH_RIVALS_SPARSE", 30*time.Second)
	idleFor := envDuration("GAOLER_BENCH_RIVALS_IDLE", 20*time.Second)
	socket, dir := testenv.JournalSocket, ""
	if os.Getenv("GAOLER_BENCH_RIVALS_JOURNAL") == "private" {
		jd := testenv.PrivateJournald(b)
		socket, dir = jd.Socket, jd.Dir
	}
	ns, _ := testenv.NetNS(b)
	mon := startMonitor(b, ns)
	cg := newCgroup(b, r.name)
	p := r.start(b, ns, cg, dir)
	sender := testenv.StartSender(b, socket, "sshd")
	defer sender.Close()
	site := uint16(rand.IntN(0xffff))
	addr := func(i int) netip.Addr { return spreadAddr(site, i) }
	attack := func(a netip.Addr, gap time.Duration) time.Time {
		var last time.Time
		for k := 0; k < rivalMaxretry; k++ {
			if k > 0 {
				time.Sleep(gap)
			}
			last = time.Now()
			sender.Send(sshdFailure(a, "root", 40000+k))
		}
		return last
	}

	// Warm-up: a tool that reads the journal from some point in the past (fail2ban: findtime ago) is
	// reading now once it bans this attacker. On the live journal a reader may miss entries while the
	// machine's journald is restarted by another test: up to three attackers, 40 s each.
	for try := 0; ; try++ {
		a := addr(60000 + try)
		attack(a, 200*time.Millisecond)
		if _, ok := mon.wait(a, 40*time.Second); ok {
			break
		}
		if try == 2 {
			b.Fatalf("%s banned none of 3 warm-up attackers within 40s each (processes %v):\n%s", r.name, cg.pids(), p.output())
		}
		b.Logf("%s did not ban warm-up attacker %s within 40s: trying another", r.name, a)
	}

	b.ResetTimer()
	cpu0, start := cg.cpu(b), time.Now()
	var sparse []netip.Addr
	for i := 1; time.Since(start) < sparseFor; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i-1) * 2 * time.Second)))
		sparse = append(sparse, addr(i))
		sender.Send(sshdFailure(addr(i), "root", 22))
	}
	time.Sleep(time.Until(start.Add(sparseFor)))
	sparseCPU, sparseElapsed := cg.cpu(b)-cpu0, time.Since(start)

	cpu0, start = cg.cpu(b), time.Now()
	time.Sleep(idleFor)
	idleCPU, idleElapsed := cg.cpu(b)-cpu0, time.Since(start)

	const paced = 20
	var lat []time.Duration
	for k := 0; k < paced; k++ {
		a := addr(10000 + k)
		at := attack(a, 200*time.Millisecond)
		seen, ok := mon.wait(a, 30*time.Second)
		if !ok {
			b.Fatalf("%s did not ban paced attacker %s within 30s:\n%s", r.name, a, p.output())
		}
		lat = append(lat, seen.Sub(at))
		time.Sleep(300 * time.Millisecond)
	}

	const burst = 100
	burstStart := time.Now()
	for k := 0; k < rivalMaxretry; k++ {
		for i := 0; i < burst; i++ {
			sender.Send(sshdFailure(addr(20000+i), "root", 41000+k))
		}
	}
	var lastBan time.Time
	for i := 0; i < burst; i++ {
		a := addr(20000 + i)
		seen, ok := mon.wait(a, max(time.Until(burstStart.Add(3*time.Minute)), time.Millisecond))
		if !ok {
			b.Fatalf("%s banned %d of the %d burst attackers within 3 minutes (not %s):\n%s", r.name, i, burst, a, p.output())
		}
		if seen.After(lastBan) {
			lastBan = seen
		}
	}
	b.StopTimer()
	for _, a := range sparse {
		if mon.has(a) {
			b.Errorf("%s banned %s, which failed once", r.name, a)
		}
	}
	rss, anon := cg.rss(b)

	b.ReportMetric(pct(lat, 50), "paced-p50-ms")
	b.ReportMetric(pct(lat, 99), "paced-p99-ms")
	b.ReportMetric(float64(burst)/lastBan.Sub(burstStart).Seconds(), "burst-bans/s")
	b.ReportMetric(100*sparseCPU.Seconds()/sparseElapsed.Seconds(), "sparse-cpu-%")
	b.ReportMetric(100*idleCPU.Seconds()/idleElapsed.Seconds(), "idle-cpu-%")
	b.ReportMetric(float64(rss)/1024, "rss-MiB")
	b.ReportMetric(float64(anon)/1024, "rss-anon-MiB")
	b.Logf("%s: paced latencies %v; load average %s", r.name, lat, loadAverage())
	p.stop(b)
}

// BenchmarkRivalsCatchUp measures each tool reading the sshd entries of the benchmark journal
// (testenv.BenchJournal: 1,000,000 entries, 100,000 of them sshd failures from 20,000 addresses, each
// failing 5 times) by the CPU time it spends until it has read them all: entries/cpu-s counts the sshd
// entries per CPU-second. The firewall is left out for every tool (gaolerd: firewall = "none";
// fail2ban: no action; sshguard: sshg-fw-null), so this is reading and matching, and the bans in each
// tool's memory:
//
//   - gaoler: as BenchmarkCatchUp, until its checkpoint reaches the last entry;
//   - fail2ban: backend = systemd[journalpath=DIR] with findtime = 30d (it starts reading at
//     max(its last position, now - findtime)), until `fail2ban-client status sshd` counts every
//     failure;
//   - sshguard has no catch-up: it keeps no position and starts at the journal's tail (journalctl -n1).
//     Its figure is the throughput of its pipeline over the same entries, with LOGREADER
//     "journalctl -D DIR -p info -t sshd -o cat" (not following), until the pipeline ends (checked by
//     its 20,000 blocks) or for at most GAOLER_BENCH_RIVALS_SSHGUARD_LIMIT (default 1m): sshg-blocker
//     searches its list of tracked addresses for each attack, so with thousands of them it slows to
//     a few hundred entries per second and would take the better part of an hour. Stopped, the
//     entries it has read are told by the bytes sshg-blocker read of sshg-parser's output (which is
//     measured over the whole journal first); read-% says how far it got;
//   - bare: the bareloop program (one term, _SYSTEMD_UNIT=ssh.service, MESSAGE read), as in
//     BenchmarkCatchUp.
//
// One run each (BenchmarkCatchUp explains why single runs of the same program vary by a third here).
func BenchmarkRivalsCatchUp(b *testing.B) {
	testenv.RequireRoot(b)
	dir := testenv.BenchJournal(b)
	const sshdEntries = testenv.BenchJournalEntries / 10
	_, lastUsec := testenv.BareLoop(b, dir, testenv.BenchReferenceMatch)
	for _, r := range rivals(b) {
		b.Run(r.name, func(b *testing.B) {
			for range b.N {
				cpu, read := r.catchUp(b, dir, sshdEntries, lastUsec)
				b.ReportMetric(float64(read)/cpu.Seconds(), "entries/cpu-s")
				b.ReportMetric(100*float64(read)/sshdEntries, "read-%")
				b.Logf("%s: %v of CPU for %d of the %d sshd entries; load average %s", r.name, cpu, read, sshdEntries, loadAverage())
			}
		})
	}
}

func startGaolerRival(b *testing.B, ns string, cg *cgroup, dir string) *treeProc {
	journal := ""
	if dir != "" {
		journal = fmt.Sprintf("[journal]\ndirectory = %q\n\n", dir)
	}
	cfg, _ := testConfig(b, fmt.Sprintf("%s[defaults]\nmaxretry = %d\nfindtime = %q\nbantime = %q\n\n[jail.sshd]\nenabled = true\n",
		journal, rivalMaxretry, rivalFindtime, rivalBantime))
	p := startTree(b, cg, "ip", "netns", "exec", ns, filepath.Join(binaries(b), "gaolerd"), "--config", cfg)
	p.waitTable(b, ns, "inet", "gaoler")
	return p
}

func startBanloop(b *testing.B, ns string, cg *cgroup, dir string) *treeProc {
	args := []string{"ip", "netns", "exec", ns, rivalBinary(b, "banloop"),
		strconv.Itoa(rivalMaxretry), rivalFindtime.String(), rivalBantime.String()}
	if dir != "" {
		args = append(args, dir)
	}
	p := startTree(b, cg, args...)
	p.waitTable(b, ns, "inet", "banloop")
	return p
}

// fail2banConfig copies Debian's /etc/fail2ban (filters, actions, jail.conf) into a temp dir and adds
// fail2ban.local (socket, pid file, log and database in that dir) and jail.local (jail).
func fail2banConfig(b *testing.B, jail string) string {
	testenv.RequireCommand(b, "fail2ban-server")
	testenv.RequireCommand(b, "fail2ban-client")
	dir := b.TempDir()
	conf := filepath.Join(dir, "fail2ban")
	if out, err := exec.Command("cp", "-a", "/etc/fail2ban", conf).CombinedOutput(); err != nil {
		b.Fatalf("copying /etc/fail2ban: %v: %s", err, out)
	}
	local := fmt.Sprintf("[Definition]\nlogtarget = %s\nsocket = %s\npidfile = %s\ndbfile = %s\n",
		filepath.Join(dir, "fail2ban.log"), filepath.Join(dir, "fail2ban.sock"), filepath.Join(dir, "fail2ban.pid"),
		filepath.Join(dir, "fail2ban.sqlite3"))
	if err := os.WriteFile(filepath.Join(conf, "fail2ban.local"), []byte(local), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "jail.local"), []byte(jail), 0o644); err != nil {
		b.Fatal(err)
	}
	return conf
}

func startFail2ban(b *testing.B, ns string, cg *cgroup, dir string) *treeProc {
	backend := "systemd"
	if dir != "" {
		backend = "systemd[journalpath=" + dir + "]"
	}
	conf := fail2banConfig(b, fmt.Sprintf(`[DEFAULT]
banaction = nftables-multiport
banaction_allports = nftables-allports
maxretry = %d
findtime = %ds
bantime = %ds

[sshd]
enabled = true
backend = %s
`, rivalMaxretry, int(rivalFindtime.Seconds()), int(rivalBantime.Seconds()), backend))
	p := startTree(b, cg, "ip", "netns", "exec", ns, "fail2ban-server", "-f", "-x", "-c", conf)
	p.conf = conf
	if !waitFor(time.Minute, func() bool { _, err := fail2banStatus(conf); return err == nil }) {
		b.Fatalf("fail2ban did not answer within a minute:\n%s", p.output())
	}
	return p
}

// fail2banStatus returns the counters `fail2ban-client status sshd` prints ("Total failed" and the
// like).
func fail2banStatus(conf string) (map[string]int, error) {
	out, err := exec.Command("fail2ban-client", "-c", conf, "status", "sshd").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	counts := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			counts[strings.TrimLeft(strings.TrimSpace(k), "|-` ")] = n
		}
	}
	return counts, nil
}

func fail2banCatchUp(b *testing.B, dir string, entries int, _ uint64) (time.Duration, int) {
	conf := fail2banConfig(b, fmt.Sprintf(`[DEFAULT]
maxretry = %d
findtime = 30d
bantime = %ds

[sshd]
enabled = true
backend = systemd[journalpath=%s]
action =
`, rivalMaxretry, int(rivalBantime.Seconds()), dir))
	cg := newCgroup(b, "fail2ban-catchup")
	p := startTree(b, cg, "fail2ban-server", "-f", "-x", "-c", conf)
	failed, last := 0, time.Now()
	for deadline := time.Now().Add(10 * time.Minute); failed < entries; time.Sleep(500 * time.Millisecond) {
		st, err := fail2banStatus(conf)
		if err == nil && st["Total failed"] != failed {
			failed, last = st["Total failed"], time.Now()
		}
		if time.Now().After(deadline) || time.Since(last) > time.Minute {
			b.Fatalf("fail2ban counted %d of the %d failures:\n%s", failed, entries, p.output())
		}
	}
	cpu := cg.cpu(b)
	p.stop(b)
	return cpu, entries
}

// sshguardConfig writes an sshguard.conf with logreader and backend and the benchmark's thresholds.
func sshguardConfig(b *testing.B, logreader, backend string) (conf, pidFile string) {
	testenv.RequireCommand(b, "sshguard")
	dir := b.TempDir()
	conf = filepath.Join(dir, "sshguard.conf")
	body := fmt.Sprintf("BACKEND=%q\nLOGREADER=%q\nTHRESHOLD=%d\nBLOCK_TIME=%d\nDETECTION_TIME=%d\nWHITELIST_FILE=/etc/sshguard/whitelist\n",
		backend, logreader, 10*rivalMaxretry, int(rivalBantime.Seconds()), int(rivalFindtime.Seconds()))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	return conf, filepath.Join(dir, "sshguard.pid")
}

// sshguardCommand runs sshguard with conf bind-mounted over /etc/sshguard/sshguard.conf, in the mount
// namespace of `ip netns exec` (or of unshare, with ns "").
func sshguardCommand(ns, conf, pidFile string) []string {
	script := fmt.Sprintf("mount --bind %s /etc/sshguard/sshguard.conf && exec /usr/sbin/sshguard -i %s", conf, pidFile)
	if ns == "" {
		return []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script}
	}
	return []string{"ip", "netns", "exec", ns, "sh", "-c", script}
}

func startSSHGuard(b *testing.B, ns string, cg *cgroup, dir string) *treeProc {
	reader := "LANG=C journalctl -afb -p info -n1 -t sshd -o cat"
	if dir != "" {
		reader += " -D " + dir
	}
	conf, pidFile := sshguardConfig(b, reader, "/usr/libexec/sshguard/sshg-fw-nft-sets")
	p := startTree(b, cg, sshguardCommand(ns, conf, pidFile)...)
	p.waitTable(b, ns, "ip6", "sshguard")
	return p
}

func sshguardCatchUp(b *testing.B, dir string, entries int, _ uint64) (time.Duration, int) {
	limit := envDuration("GAOLER_BENCH_RIVALS_SSHGUARD_LIMIT", time.Minute)
	reader := "LANG=C journalctl -D " + dir + " -p info -t sshd -o cat"
	// How much the parser hands the blocker for the whole journal, to tell how far the blocker got.
	parsed, err := exec.Command("sh", "-c", reader+" | /usr/libexec/sshguard/sshg-parser | wc -c").Output()
	if err != nil {
		b.Fatalf("sshg-parser over the benchmark journal: %v", err)
	}
	total, err := strconv.Atoi(strings.TrimSpace(string(parsed)))
	if err != nil || total == 0 {
		b.Fatalf("sshg-parser printed %q bytes for the benchmark journal", parsed)
	}
	conf, pidFile := sshguardConfig(b, reader, "/usr/libexec/sshguard/sshg-fw-null")
	cg := newCgroup(b, "sshguard-catchup")
	p := startTree(b, cg, sshguardCommand("", conf, pidFile)...)
	blocker := 0
	waitFor(10*time.Second, func() bool {
		for _, pid := range cg.pids() {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "sshg-blocker" {
				blocker = pid
				return true
			}
		}
		return false
	})
	if blocker == 0 {
		b.Fatalf("no sshg-blocker in sshguard's pipeline:\n%s", p.output())
	}
	select {
	case <-p.exited:
		cpu := cg.cpu(b)
		const addresses = 20000 // see testenv.BenchJournal
		if n := strings.Count(p.output(), "===>>> Blocking "); n != addresses {
			b.Fatalf("sshguard blocked %d addresses, want %d:\n%.2000s", n, addresses, p.output())
		}
		return cpu, entries
	case <-time.After(limit):
	}
	// Not done: the entries the blocker has read so far, from the bytes it read of the parser's
	// output (its stdin; /proc/PID/io's rchar also counts its whitelist file, a few bytes).
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", blocker))
	cpu := cg.cpu(b)
	if err != nil {
		b.Fatalf("sshg-blocker: %v", err)
	}
	var rchar int
	fmt.Sscanf(string(io), "rchar: %d", &rchar)
	p.stop(b)
	return cpu, min(entries, int(int64(entries)*int64(rchar)/int64(total)))
}

// treeProc is a process tree the side-by-side benchmark started, in a process group and a cgroup of
// its own.
type treeProc struct {
	cmd    *exec.Cmd
	log    *strings.Builder
	exited chan struct{}
	conf   string // fail2ban's configuration directory
}

// startTree runs args inside cg (the shell that joins it execs args, so that every process of the
// tree is counted) and in a process group of its own (sshguard's script kills its group on exit). It
// is stopped when the benchmark ends.
func startTree(b *testing.B, cg *cgroup, args ...string) *treeProc {
	cmd := exec.Command("sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, cg.procsFile()}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &treeProc{cmd: cmd, log: &strings.Builder{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &lockedWriter{b: p.log}, &lockedWriter{b: p.log}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	b.Cleanup(func() { p.stop(b) })
	return p
}

func (p *treeProc) output() string {
	lockedMu.Lock()
	defer lockedMu.Unlock()
	return p.log.String()
}

// stop ends the process group: SIGTERM, and SIGKILL after 20 s (fail2ban removes its table first).
func (p *treeProc) stop(b *testing.B) {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		b.Logf("process group %d still running 20s after SIGTERM: killed", pgid)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.exited
}

// waitTable waits until the tool has created its table in ns.
func (p *treeProc) waitTable(b *testing.B, ns, family, table string) {
	if !waitFor(30*time.Second, func() bool {
		_, err := testenv.NSRun(ns, "nft", "list", "table", family, table)
		return err == nil
	}) {
		b.Fatalf("no table %s %s in %s within 30s:\n%s", family, table, ns, p.output())
	}
}

// cgroup is a CPU accounting cgroup (cgroup v1's cpuacct, or a cgroup v2 directory) holding one tool's
// processes, so that the CPU of processes that already ended (sshguard's and fail2ban's nft runs) is
// counted.
type cgroup struct {
	dir string
	v2  bool
}

func newCgroup(b *testing.B, name string) *cgroup {
	cg := &cgroup{dir: fmt.Sprintf("/sys/fs/cgroup/cpuacct/gaoler-bench-%d-%s", os.Getpid(), name)}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cg = &cgroup{dir: fmt.Sprintf("/sys/fs/cgroup/gaoler-bench-%d-%s", os.Getpid(), name), v2: true}
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		b.Fatalf("creating a cgroup: %v", err)
	}
	b.Cleanup(func() {
		for i := 0; i < 50; i++ { // the tree's last processes may still be exiting
			if err := os.Remove(cg.dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.Logf("cgroup %s still has processes: %v", cg.dir, cg.pids())
	})
	return cg
}

func (cg *cgroup) procsFile() string { return filepath.Join(cg.dir, "cgroup.procs") }

// cpu returns the CPU time the cgroup's processes have used, those that ended included.
func (cg *cgroup) cpu(b *testing.B) time.Duration {
	if !cg.v2 {
		data, err := os.ReadFile(filepath.Join(cg.dir, "cpuacct.usage"))
		if err != nil {
			b.Fatal(err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			b.Fatalf("cpuacct.usage: %v", err)
		}
		return time.Duration(ns)
	}
	f, err := os.Open(filepath.Join(cg.dir, "cpu.stat"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == "usage_usec" {
			us, _ := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond
		}
	}
	b.Fatalf("no usage_usec in %s/cpu.stat", cg.dir)
	return 0
}

func (cg *cgroup) pids() []int {
	data, _ := os.ReadFile(cg.procsFile())
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// rss returns the resident memory of the cgroup's processes in KiB, summed from /proc/PID/status:
// VmRSS (shared pages counted in each process) and RssAnon.
func (cg *cgroup) rss(b *testing.B) (rss, anon int) {
	for _, pid := range cg.pids() {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue // ended meanwhile
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "VmRSS:":
				rss += kb
			case "RssAnon:":
				anon += kb
			}
		}
	}
	return rss, anon
}

var (
	rivalBuild sync.Once
	rivalDir   string
	rivalErr   error
)

// rivalBinary builds the side-by-side benchmark's reference programs once and returns the path of name.
func rivalBinary(b *testing.B, name string) string {
	rivalBuild.Do(func() {
		rivalDir, rivalErr = os.MkdirTemp("", "gaoler-rivals-bin-")
		if rivalErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", rivalDir+"/", "github.com/gaoler/gaoler/internal/bareloop/cmd/banloop").CombinedOutput()
		if err != nil {
			rivalErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if rivalErr != nil {
		b.Fatal(rivalErr)
	}
	return filepath.Join(rivalDir, name)
}

// has reports whether a was seen.
func (l *seenLog) has(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.seen[a]
	return ok
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// loadAverage is /proc/loadavg's first three fields, for the log next to the figures.
func loadAverage() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
