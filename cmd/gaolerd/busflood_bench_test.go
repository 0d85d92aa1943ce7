package main

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// BenchmarkBanLatencyBusFlood measures ban latency, journal to kernel (nft monitor), with 100,000
// bans in the sshd sets (GAOLER_BENCH_PRELOAD), 300 bans 10 ms apart as BenchmarkBanLatency100k
// does, twice in the same run: quiet-* with nothing on the bus, flood-* while two clients call
// ListBans in a loop and three Ban and Unban addresses of their own (TestBusFloodWhileStreaming's
// flood). It reports the flood's bus calls too: how many, and their reply times (list-* for a
// ListBans of the 100,000 bans, banpair-* for a Ban and its Unban, each answered after its
// checkpoint is written).
func BenchmarkBanLatencyBusFlood(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.Journald(b)
	testenv.RequireCommand(b, "nft")
	address := testenv.SystemBus(b)
	preload := benchPreload()
	p := startPreloaded(b, preload, true, "DBUS_SYSTEM_BUS_ADDRESS="+address)
	b.Logf("%d bans restored in %v", preload, p.took)
	site := p.measureSite()
	addr := func(i int) netip.Addr { return spreadAddr(site, i) }
	sender := testenv.StartSender(b, testenv.JournalSocket, "sshd")
	defer sender.Close()
	sender.Send(sshdFailure(addr(0), "root", 1)) // the reader hot, as in BenchmarkBanLatency100k
	if _, ok := p.mon.wait(addr(0), 10*time.Second); !ok {
		b.Fatalf("first failure not banned within 10s:\n%s", p.d.output())
	}
	b.ResetTimer()
	quiet := hotBans(b, sender, func(i int) netip.Addr { return addr(1 + i) }, p.mon, nil, nil)
	flood := startBusFlood(b, address, 2, 3, site, preload)
	time.Sleep(time.Second) // the flood under way
	loud := hotBans(b, sender, func(i int) netip.Addr { return addr(400 + i) }, p.mon, nil, nil)
	st := flood.stop(b)
	b.StopTimer()
	for _, err := range st.errs {
		b.Errorf("bus call: %v", err)
	}
	b.Logf("quiet, slowest bans: %s", quiet.slowest(5))
	b.Logf("flood, slowest bans: %s", loud.slowest(5))
	b.ReportMetric(pct(quiet.gaoler, 50), "quiet-p50-ms")
	b.ReportMetric(pct(quiet.gaoler, 99), "quiet-p99-ms")
	b.ReportMetric(pct(loud.gaoler, 50), "flood-p50-ms")
	b.ReportMetric(pct(loud.gaoler, 99), "flood-p99-ms")
	secs := st.ended.Sub(st.started).Seconds()
	b.ReportMetric(float64(st.lists)/secs, "lists/s")
	b.ReportMetric(float64(st.bans)/secs, "banpairs/s")
	b.ReportMetric(pct(st.listT, 50), "list-p50-ms")
	b.ReportMetric(pct(st.listT, 99), "list-p99-ms")
	b.ReportMetric(pct(st.banT, 50), "banpair-p50-ms")
	b.ReportMetric(pct(st.banT, 99), "banpair-p99-ms")
	p.d.stop(b, syscall.SIGTERM)
}
