package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// TestReaderHotThenIdle runs gaolerd on a private journald (so other tests' entries cannot wake it)
// with hot_time = 2s: a failure after a quiet spell is banned within journald's notification delay,
// a burst that follows is banned within milliseconds each, and once hot_time has passed the daemon
// blocks again: its CPU time stops growing.
func TestReaderHotThenIdle(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	jd := testenv.PrivateJournald(t)
	ns, _ := testenv.NetNS(t)
	cfg, _ := testConfig(t, fmt.Sprintf(`
[journal]
directory = %q
hot_time = "2s"

[defaults]
maxretry = 1

[jail.sshd]
enabled = true
`, jd.Dir))
	d := startDaemon(t, ns, cfg)
	d.waitReady(t, ns)
	pid := d.cmd.Process.Pid
	site := uint16(rand.IntN(0xffff))
	addr := func(i int) netip.Addr { return spreadAddr(site, i) }
	sender := testenv.StartSender(t, jd.Socket, "sshd")
	mon := startMonitor(t, ns)
	bannedAt := func(a netip.Addr, sent time.Time) time.Duration {
		t.Helper()
		at, ok := mon.wait(a, 5*time.Second)
		if !ok {
			t.Fatalf("%s not banned within 5s:\n%s", a, d.output())
		}
		return at.Sub(sent)
	}

	time.Sleep(3 * time.Second) // quiet
	sent := time.Now()
	sender.Send(sshdFailure(addr(0), "root", 1))
	cold := bannedAt(addr(0), sent)
	t.Logf("cold: first failure after 3s of quiet banned after %v (journald notifies within ~250-480ms)", cold)
	if cold > 2*time.Second {
		t.Errorf("cold failure banned after %v", cold)
	}

	var hot []time.Duration
	for i := 1; i <= 20; i++ {
		sent := time.Now()
		sender.Send(sshdFailure(addr(i), "root", 1))
		hot = append(hot, bannedAt(addr(i), sent))
		time.Sleep(10 * time.Millisecond)
	}
	sort.Slice(hot, func(i, j int) bool { return hot[i] < hot[j] })
	t.Logf("hot: burst of 20 banned after p50 %v, max %v (nft monitor)", hot[10], hot[19])
	if hot[10] > 100*time.Millisecond { // milliseconds really; generous for a loaded CI machine
		t.Errorf("hot p50 %v: the reader did not poll after the first failure", hot[10])
	}

	time.Sleep(2500 * time.Millisecond) // hot_time is over
	c0 := cpuTime(t, pid)
	time.Sleep(3 * time.Second)
	idle := cpuTime(t, pid) - c0
	t.Logf("idle: %v of CPU in 3s after hot_time", idle)
	if idle > 60*time.Millisecond {
		t.Errorf("gaolerd used %v of CPU in 3s after hot_time: still polling?", idle)
	}
	sender.Close()
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("gaolerd exit: %v", err)
	}
}
