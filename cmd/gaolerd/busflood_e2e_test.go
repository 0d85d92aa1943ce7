package main

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/internal/testenv"
)

// TestBusFloodWhileStreaming is issue 18's fault "a flood of bus calls while the journal streams":
// with 100,000 bans in the sshd jail (GAOLER_TEST_PRELOAD to change), two clients call ListBans in
// a loop and three Ban and Unban addresses of their own, while 200 failures (maxretry 1) stream
// from the journal. Every failure's address reaches the kernel set, every bus call is answered
// without an error, each ListBans lists at least the preloaded bans, and once the flood stops no
// manual ban is left; then ListBansPage lists the same bans a page at a time. No timing is asserted: BenchmarkBanLatencyBusFlood measures it.
func TestBusFloodWhileStreaming(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Journald(t)
	testenv.RequireCommand(t, "nft")
	address := testenv.SystemBus(t)
	preload := 100_000
	if v, err := strconv.Atoi(os.Getenv("GAOLER_TEST_PRELOAD")); err == nil {
		preload = v
	}
	p := startPreloaded(t, preload, false, "DBUS_SYSTEM_BUS_ADDRESS="+address)
	site := p.measureSite()
	flood := startBusFlood(t, address, 2, 3, site, preload)
	sender := testenv.StartSender(t, testenv.JournalSocket, "sshd")
	defer sender.Close()
	const n = 200
	for i := range n {
		if err := sender.Send(sshdFailure(spreadAddr(site, i), "root", 4000+i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var missing []netip.Addr
	for deadline := time.Now().Add(2 * time.Minute); ; {
		in := setAddrs(t, p.fd, "sshd_v6")
		missing = missing[:0]
		for i := range n {
			if a := spreadAddr(site, i); !in[a] {
				missing = append(missing, a)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second) // a listing of 100,000 elements costs a fraction of a second
	}
	st := flood.stop(t)
	if len(missing) > 0 {
		t.Errorf("%d of the %d failing addresses not banned within 2 minutes of the flood, first %s:\n%s",
			len(missing), n, missing[0], p.d.output())
	}
	for _, err := range st.errs {
		t.Errorf("bus call: %v", err)
	}
	if st.lists == 0 || st.bans == 0 {
		t.Errorf("the flood made %d ListBans and %d Ban/Unban pairs: it did not run", st.lists, st.bans)
	}
	t.Logf("flood: %d ListBans (each of at least %d bans), %d Ban/Unban pairs", st.lists, preload, st.bans)
	// The same bans a page at a time: each once, in order, all the preloaded ones there.
	c, err := bus.DialAddress(address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var paged []netip.Prefix
	for after, pages := "", 0; ; pages++ {
		bans, next, err := c.BanPage("sshd", after, 0)
		if err != nil || len(bans) > bus.MaxPage || pages > preload/bus.MaxPage+10 {
			t.Fatalf("page %d after %q: %d bans, %v", pages, after, len(bans), err)
		}
		for _, b := range bans {
			paged = append(paged, netip.MustParsePrefix(cidr(b.Address)))
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(paged) < preload+n || !slices.IsSortedFunc(paged, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
		t.Errorf("ListBansPage listed %d bans (sorted: %v), want the %d preloaded and the %d streamed", len(paged),
			slices.IsSortedFunc(paged, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }), preload, n)
	}
	in := setAddrs(t, p.fd, "sshd_v6")
	for _, a := range flood.manual {
		if in[a] {
			t.Errorf("%s still banned after its Unban", a)
		}
	}
	p.d.stop(t, syscall.SIGTERM)
}

// busFlood is clients calling gaolerd's bus in loops: listers call ListBans on the sshd jail,
// banners Ban an address of their own for 10 minutes and Unban it.
type busFlood struct {
	manual []netip.Addr // the banners' addresses
	done   chan struct{}
	wg     sync.WaitGroup

	mu  sync.Mutex
	st  floodStats
	min int // the fewest bans a ListBans reply may hold
}

// floodStats is what a flood did: calls made (a Ban/Unban pair counts once), how long each took,
// and the errors, which include a ListBans reply holding fewer bans than expected.
type floodStats struct {
	lists, bans    int
	listT, banT    []time.Duration
	errs           []error
	started, ended time.Time
}

// startBusFlood starts listers and banners, each with its own bus connection; the banners' addresses
// are spreadAddr(site, 1000+...), apart from the failures the tests send.
func startBusFlood(tb testing.TB, address string, listers, banners int, site uint16, minBans int) *busFlood {
	f := &busFlood{done: make(chan struct{}), min: minBans}
	f.st.started = time.Now()
	dial := func() *bus.Client {
		c, err := bus.DialAddress(address)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		return c
	}
	// The daemon takes its bus name after its start; wait for it before flooding.
	first := dial()
	if !waitFor(30*time.Second, func() bool { _, err := first.ListBans("sshd"); return err == nil }) {
		tb.Fatal("gaolerd did not answer ListBans on the bus within 30s")
	}
	for range listers {
		c := dial()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for !f.stopped() {
				start := time.Now()
				bans, err := c.ListBans("sshd")
				f.record(&f.st.lists, &f.st.listT, start, err)
				if err == nil && len(bans) < f.min {
					f.fail(fmt.Errorf("ListBans listed %d bans, want at least %d", len(bans), f.min))
				}
			}
		}()
	}
	for k := range banners {
		c := dial()
		var mine []netip.Addr
		for i := range 8 {
			mine = append(mine, spreadAddr(site, 1000+100*k+i))
		}
		f.manual = append(f.manual, mine...)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for i := 0; !f.stopped(); i++ {
				a := mine[i%len(mine)].String()
				start := time.Now()
				_, err := c.Ban("sshd", a, 600)
				if err == nil {
					_, err = c.Unban("sshd", a)
				}
				f.record(&f.st.bans, &f.st.banT, start, err)
			}
		}()
	}
	return f
}

func (f *busFlood) stopped() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func (f *busFlood) record(n *int, ts *[]time.Duration, start time.Time, err error) {
	took := time.Since(start)
	f.mu.Lock()
	defer f.mu.Unlock()
	*n++
	*ts = append(*ts, took)
	if err != nil {
		f.st.errs = append(f.st.errs, err)
	}
}

func (f *busFlood) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.errs = append(f.st.errs, err)
}

// stop ends the flood and waits for its calls: every one of them is answered (a bus call that gets
// no reply fails after the bus's own timeout), so waiting is bounded; 3 minutes is a hang.
func (f *busFlood) stop(tb testing.TB) floodStats {
	close(f.done)
	waited := make(chan struct{})
	go func() { f.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(3 * time.Minute):
		tb.Fatal("bus calls of the flood unanswered 3 minutes after it stopped")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.ended = time.Now()
	return f.st
}

// cidr returns a ListBans address as a prefix: a bare address is its host prefix.
func cidr(address string) string {
	if strings.Contains(address, "/") {
		return address
	}
	a := netip.MustParseAddr(address)
	return netip.PrefixFrom(a, a.BitLen()).String()
}

// setAddrs returns the addresses in one of gaolerd's sets in the namespace fd refers to, over
// netlink (`nft -j list set` takes minutes for 100,000 elements).
func setAddrs(tb testing.TB, fd int, set string) map[netip.Addr]bool {
	conn, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := conn.GetSetByName(&nftables.Table{Name: "gaoler", Family: nftables.TableFamilyINet}, set)
	if err != nil {
		tb.Fatalf("set %s: %v", set, err)
	}
	elems, err := conn.GetSetElements(s)
	if err != nil {
		tb.Fatalf("set %s: %v", set, err)
	}
	out := make(map[netip.Addr]bool, len(elems))
	for _, e := range elems {
		if a, ok := netip.AddrFromSlice(e.Key); ok {
			out[a] = true
		}
	}
	return out
}
