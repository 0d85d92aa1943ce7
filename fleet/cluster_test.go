package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gaoler/gaoler/config"
)

// startCluster starts a JetStream cluster of n in-process nats-servers on loopback and returns them
// with their client URLs.
func startCluster(t testing.TB, n int) ([]*server.Server, []string) {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var servers []*server.Server
	var urls []string
	for i := range n {
		s := startServer(t, 0, func(o *server.Options) {
			o.ServerName = fmt.Sprintf("nats%d", i+1)
			o.Cluster = server.ClusterOpts{Name: "gaoler-test", Host: "127.0.0.1", Port: ports[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		})
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	waitFor(t, 30*time.Second, "the cluster has a JetStream meta leader", func() bool {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return servers, urls
}

// TestClusterLosesNode: on a three-node cluster with buckets of three replicas, shutting down the
// node h1 is connected to does not stop its bans reaching h2 and h3.
func TestClusterLosesNode(t *testing.T) {
	servers, urls := startCluster(t, 3)
	r3 := func(c *config.Fleet) { c.Replicas = 3 }
	// Each host lists every server, its own first, as the config's servers would.
	rot := func(i int) []string { return append(append([]string{}, urls[i:]...), urls[:i]...) }
	h1 := startHost(t, "h1", rot(0), "", r3)
	h2 := startHost(t, "h2", rot(1), "", r3)
	h3 := startHost(t, "h3", rot(2), "", r3)
	waitConnected(t, h1, h2, h3)
	h1.d.localBan(h1.f, "sshd", "192.0.2.10/32", time.Hour)
	for _, h := range []*host{h2, h3} {
		waitFor(t, 5*time.Second, h.name+" applies the first ban", func() bool { _, ok := h.d.banned("sshd.192.0.2.10"); return ok })
	}
	var lost *server.Server
	st := h1.f.Status()
	for _, s := range servers {
		if s.ClientURL() == strings.TrimSuffix(st.Server, "/") || "nats://"+s.Addr().String() == st.Server {
			lost = s
		}
	}
	if lost == nil {
		t.Fatalf("h1's server %s is none of %v", st.Server, urls)
	}
	lost.Shutdown()
	lostAt := time.Now()
	h1.d.localBan(h1.f, "sshd", "192.0.2.11/32", time.Hour)
	defer func() { t.Logf("with a node lost, the ban reached h2 and h3 in %s", time.Since(lostAt)) }()
	for _, h := range []*host{h2, h3} {
		waitFor(t, 20*time.Second, h.name+" applies a ban made after a node was lost", func() bool {
			_, ok := h.d.banned("sshd.192.0.2.11")
			return ok
		})
	}
}

// BenchmarkPropagation measures how long a ban on h1 takes to be applied on h2 and h3 (Handle to
// ApplyPeerBan) on a three-node in-process cluster with buckets of three replicas, over 300 bans
// 10 ms apart; it reports p50 and p99 next to the round trip of a plain JetStream publish to the
// same cluster, the reference.
func BenchmarkPropagation(b *testing.B) {
	_, urls := startCluster(b, 3)
	r3 := func(c *config.Fleet) { c.Replicas = 3 }
	rot := func(i int) []string { return append(append([]string{}, urls[i:]...), urls[:i]...) }
	h1, h2, h3 := startHost(b, "h1", rot(0), "", r3), startHost(b, "h2", rot(1), "", r3), startHost(b, "h3", rot(2), "", r3)
	waitConnected(b, h1, h2, h3)
	const bans = 300
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		for i := range bans {
			addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 250)})
			if i >= 250 {
				addr = netip.AddrFrom4([4]byte{203, 0, 113, byte(i - 250)})
			}
			start := time.Now()
			h1.d.localBan(h1.f, "sshd", addr.String()+"/32", time.Hour)
			for _, h := range []*host{h2, h3} {
				select {
				case <-h.d.applied:
				case <-time.After(10 * time.Second):
					b.Fatalf("%s did not apply ban %d", h.name, i)
				}
			}
			lat = append(lat, time.Since(start))
			time.Sleep(10 * time.Millisecond)
		}
		for _, h := range []*host{h1, h2, h3} {
			h.d.mu.Lock()
			clear(h.d.bans)
			h.d.mu.Unlock()
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	b.ReportMetric(float64(p(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(publishRoundTrip(b, urls[0]).Microseconds())/1000, "ref-publish-p50-ms")
}

// publishRoundTrip is the reference: the median time of a JetStream publish to an R3 stream on the
// cluster, acknowledged, over 300 publishes.
func publishRoundTrip(b *testing.B, url string) time.Duration {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "REF", Subjects: []string{"ref.>"}, Replicas: 3}); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for range 300 {
		start := time.Now()
		if _, err := js.Publish(ctx, "ref.x", []byte("{}")); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[len(lat)/2]
}
