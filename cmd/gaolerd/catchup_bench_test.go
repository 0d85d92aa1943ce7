package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gaoler/gaoler/internal/testenv"
)

// BenchmarkCatchUp measures gaolerd catching up on the benchmark journal (1,000,000 entries, a tenth
// of them sshd failures from 20,000 addresses; see testenv.BenchJournal) by the CPU time the whole
// daemon process spends until its checkpoint reaches the last entry, next to the CPU time of the bare
// go-systemd loop (package bareloop: sd_journal_next + MESSAGE, through the single term
// _SYSTEMD_UNIT=ssh.service: testenv.BenchReferenceMatch) over the same
// files, measured two ways: as a program of its own (a whole process, like gaolerd: the headline
// ratio) and inside this benchmark's process, where it pays no start-up (compared with gaolerd's CPU
// less the start-up of `gaolerd --version`). The three take turns, catchUpRounds times per iteration,
// and the fastest run of each is compared (the medians are logged): on this machine the same process
// reading the same files takes either about 460 or about 620 ms of CPU, at random from one run to the
// next (a C loop over sd-journal shows it too), so single runs or medians of a few compare luck.
// entries/s counts the sshd entries, as the issue states the rates. With GAOLER_BENCH_PROFILE set to a
// directory, each gaolerd run writes its CPU profile there (GAOLERD_CPUPROFILE, see gaolerd(8)):
// `go tool pprof gaolerd DIR/*.prof` sums them.
func BenchmarkCatchUp(b *testing.B) {
	testenv.RequireRoot(b)
	dir := testenv.BenchJournal(b)
	const sshdEntries = testenv.BenchJournalEntries / 10
	const catchUpRounds = 5

	var inProc, proc, gaolerd []time.Duration
	for i := 0; i < b.N; i++ {
		for r := 0; r < catchUpRounds; r++ {
			cpu, lastUsec := bareLoopCPU(b, dir, sshdEntries)
			inProc = append(inProc, cpu)
			proc = append(proc, bareProcessCPU(b, dir, sshdEntries))
			gaolerd = append(gaolerd, catchUpCPU(b, dir, lastUsec))
		}
	}
	// Starting the process at all (exec, dynamic linking of libsystemd and its libraries, the Go
	// runtime) is measured apart, by `gaolerd --version`, in the same run.
	ver := exec.Command(filepath.Join(binaries(b), "gaolerd"), "--version")
	if err := ver.Run(); err != nil {
		b.Fatal(err)
	}
	startCPU := ver.ProcessState.UserTime() + ver.ProcessState.SystemTime()
	inProcCPU, procCPU, gaolerCPU := slices.Min(inProc), slices.Min(proc), slices.Min(gaolerd)
	b.ReportMetric(float64(sshdEntries)/procCPU.Seconds(), "bare-entries/s")
	b.ReportMetric(float64(sshdEntries)/gaolerCPU.Seconds(), "gaolerd-entries/s")
	b.ReportMetric(procCPU.Seconds()/gaolerCPU.Seconds(), "gaolerd/bare")
	b.ReportMetric(float64(sshdEntries)/inProcCPU.Seconds(), "bare-inproc-entries/s")
	b.ReportMetric(float64(startCPU.Microseconds())/1000, "process-start-ms")
	b.ReportMetric(inProcCPU.Seconds()/(gaolerCPU-startCPU).Seconds(), "gaolerd-after-start/bare-inproc")
	b.Logf("CPU per catch-up, bare loop process:    %v (median %v)", proc, median(proc))
	b.Logf("CPU per catch-up, bare loop in-process: %v (median %v)", inProc, median(inProc))
	b.Logf("CPU per catch-up, gaolerd:              %v (median %v)", gaolerd, median(gaolerd))
	b.Logf("gaolerd/bare by medians: %.2f", median(proc).Seconds()/median(gaolerd).Seconds())
}

// bareProcessCPU runs the bareloop program over dir with the sshd match and returns its CPU time.
func bareProcessCPU(b *testing.B, dir string, want int) time.Duration {
	cmd := exec.Command(filepath.Join(binaries(b), "bareloop"), append([]string{dir}, testenv.BenchReferenceMatch...)...)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bareloop: %v", err)
	}
	var n int
	var last uint64
	if _, err := fmt.Sscan(string(out), &n, &last); err != nil || n != want {
		b.Fatalf("bareloop printed %q, want %d entries", out, want)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// catchUpCPU starts gaolerd with no checkpoint on the journal in dir and returns the CPU time it has
// spent when its checkpoint covers the entry at lastUsec.
func catchUpCPU(b *testing.B, dir string, lastUsec uint64) time.Duration {
	cfg, state := testConfig(b, fmt.Sprintf(`firewall = "none"
[journal]
directory = %q

[defaults]
findtime = "30d"

[jail.sshd]
enabled = true
`, dir))
	// testConfig writes the [daemon] table first: firewall belongs to it.
	// Started directly, not through `ip netns exec` (whose mount namespace and sysfs mount would be
	// counted as gaolerd's CPU): firewall = "none" touches no firewall.
	var env []string
	if dir := os.Getenv("GAOLER_BENCH_PROFILE"); dir != "" {
		env = append(env, profileEnv+"="+filepath.Join(dir, fmt.Sprintf("gaolerd-catchup-%d.prof", time.Now().UnixNano())))
	}
	d := startDaemon(b, "", cfg, env...)
	pid := d.cmd.Process.Pid
	var cpu time.Duration
	if !waitFor(5*time.Minute, func() bool {
		cpu = cpuTime(b, pid)
		return checkpointUsec(state) >= lastUsec
	}) {
		b.Fatalf("gaolerd did not catch up within 5 minutes:\n%s", d.output())
	}
	d.stop(b, syscall.SIGTERM)
	return cpu
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func bareLoopCPU(b *testing.B, dir string, want int) (time.Duration, uint64) {
	var ru0, ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	n, last := testenv.BareLoop(b, dir, testenv.BenchReferenceMatch)
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	if n != want {
		b.Fatalf("bare loop read %d entries, want %d", n, want)
	}
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	return cpu, last
}

// checkpointUsec returns the timestamp of the last entry gaolerd's checkpoint covers.
func checkpointUsec(stateDir string) uint64 {
	data, err := os.ReadFile(filepath.Join(stateDir, "state.json"))
	if err != nil {
		return 0
	}
	var cp struct {
		RealtimeUsec uint64 `json:"realtime_usec"`
	}
	json.Unmarshal(data, &cp)
	return cp.RealtimeUsec
}
