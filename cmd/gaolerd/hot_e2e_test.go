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
// with maxretry = 2 and hot_time = 2s. Failures that leave their addresses one failure from a ban
// turn the reader hot: each address's next failure is banned within milliseconds. Once no address
// is one failure from a ban (all banned), or hot_time has passed since the last failure, the daemon
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
maxretry = 2

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
	idleCPU := func(what string) {
		t.Helper()
		c0 := cpuTime(t, pid)
		time.Sleep(3 * time.Second)
		idle := cpuTime(t, pid) - c0
		t.Logf("%s: %v of CPU in 3s", what, idle)
		if idle > 60*time.Millisecond {
			t.Errorf("gaolerd used %v of CPU in 3s %s: still polling?", idle, what)
		}
	}

	idleCPU("before any failure")
	const n = 20
	for i := range n { // one failure each: every address is one failure from its ban
		sender.Send(sshdFailure(addr(i), "root", 1))
	}
	time.Sleep(time.Second)
	var hot []time.Duration
	for i := range n {
		sent := time.Now()
		sender.Send(sshdFailure(addr(i), "root", 2))
		at, ok := mon.wait(addr(i), 5*time.Second)
		if !ok {
			t.Fatalf("%s not banned within 5s:\n%s", addr(i), d.output())
		}
		hot = append(hot, at.Sub(sent))
		time.Sleep(10 * time.Millisecond)
	}
	sort.Slice(hot, func(i, j int) bool { return hot[i] < hot[j] })
	t.Logf("hot: the second failures of %d addresses banned after p50 %v, max %v (nft monitor)", n, hot[n/2], hot[n-1])
	if hot[n/2] > 100*time.Millisecond { // milliseconds really; generous for a loaded CI machine
		t.Errorf("hot p50 %v: the reader did not poll while addresses were one failure from a ban", hot[n/2])
	}
	idleCPU("with every near address banned")

	// One more address one failure from its ban: hot for hot_time, then cold again.
	sender.Send(sshdFailure(addr(n), "root", 1))
	time.Sleep(2500 * time.Millisecond)
	idleCPU("after hot_time")
	sender.Close()
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("gaolerd exit: %v", err)
	}
}
