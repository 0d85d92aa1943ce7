package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

// TestExactlyOnceAcrossSIGKILL kills gaolerd with SIGKILL at random moments while sshd failures are
// being written to the real journal, restarts it each time, and then checks the kernel's set: every
// address that failed maxretry times is banned, and no address that failed maxretry-1 times is. A
// failure counted twice across a restart bans a "maxretry-1" address; one skipped leaves a "maxretry"
// address free.
func TestExactlyOnceAcrossSIGKILL(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	testenv.RequireCommand(t, "nft")
	ns, _ := testenv.NetNS(t)

	const maxretry = 3
	net := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:%x::/64", rand.IntN(0xffff), rand.IntN(0xffff)))
	addr := func(i int) netip.Addr {
		b := net.Addr().As16()
		b[14], b[15] = byte(i>>8), byte(i)
		return netip.AddrFrom16(b)
	}
	const n = 80 // addresses 1..n fail maxretry times, n+1..2n fail maxretry-1 times
	var order []netip.Addr
	for i := 1; i <= 2*n; i++ {
		times := maxretry
		if i > n {
			times = maxretry - 1
		}
		for k := 0; k < times; k++ {
			order = append(order, addr(i))
		}
	}
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

	cfg, _ := testConfig(t, fmt.Sprintf(`
[defaults]
maxretry = %d
findtime = "1h"
bantime = "1h"
ipv6_subnet_limit = 0   # 160 addresses of one /64: counted one by one here, not as a rotating /64

[jail.sshd]
enabled = true
`, maxretry))

	start := time.Now().Add(-time.Second)
	sender := testenv.StartSender(t, testenv.JournalSocket, "sshd")
	sent := make(chan error, 1)
	go func() {
		for i, a := range order {
			if err := sender.Send(sshdFailure(a, "root", 40000+i)); err != nil {
				sent <- err
				return
			}
			time.Sleep(time.Duration(5+rand.IntN(30)) * time.Millisecond)
		}
		sent <- sender.Close()
	}()

	kills := 0
	for done := false; !done; {
		d := startDaemon(t, ns, cfg)
		select {
		case err := <-sent:
			if err != nil {
				t.Fatalf("sending entries: %v", err)
			}
			done = true
		case <-time.After(time.Duration(150+rand.IntN(900)) * time.Millisecond):
		}
		d.stop(t, syscall.SIGKILL)
		kills++
	}
	t.Logf("%d entries sent, gaolerd killed %d times while they were written", len(order), kills)

	final := startDaemon(t, ns, cfg)
	var got []netip.Addr
	ours := func() []netip.Addr {
		var out []netip.Addr
		for _, e := range setElements(t, ns, "sshd_v6") {
			if net.Contains(e.Prefix.Addr()) {
				out = append(out, e.Prefix.Addr())
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
		return out
	}
	waitFor(20*time.Second, func() bool { got = ours(); return len(got) >= n })
	time.Sleep(time.Second) // anything counted twice would show up now
	got = ours()
	if err := final.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("gaolerd exit after SIGTERM: %v", err)
	}

	want := map[netip.Addr]bool{}
	for i := 1; i <= n; i++ {
		want[addr(i)] = true
	}
	for _, a := range got {
		if !want[a] {
			t.Errorf("%s banned, but it failed only %d times (a failure counted twice)", a, maxretry-1)
		}
		delete(want, a)
	}
	for a := range want {
		t.Errorf("%s not banned, but it failed %d times (a failure missed)", a, maxretry)
	}
	// A ban re-derived after a crash from entries the checkpoint had not covered is a restoration:
	// no second ban entry for any address.
	out, err := exec.Command("journalctl", "-q", "--no-pager", "-o", "cat", "--output-fields=GAOLER_ADDRESS",
		"MESSAGE_ID="+events.MsgBan, "SYSLOG_IDENTIFIER=gaolerd", "--since", start.Format("2006-01-02 15:04:05")).Output()
	if err != nil {
		t.Fatalf("journalctl: %v", err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		if a, err := netip.ParseAddr(strings.TrimSpace(line)); err == nil && net.Contains(a) {
			seen[a.String()]++
		}
	}
	for a, c := range seen {
		if c > 1 {
			t.Errorf("%s has %d ban entries: a restored ban was announced again", a, c)
		}
	}
	t.Logf("%d of %d bans announced once each (a crash between the kernel and the announcement loses one)", len(seen), n)
	if t.Failed() {
		t.Logf("final gaolerd:\n%s", final.output())
	}
}
