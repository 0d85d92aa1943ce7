package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

// The fleet's end-to-end tests: three hosts h1, h2, h3 in network namespaces joined by a bridge
// (192.0.2.11-13/24, 2001:db8:f1::11-13/64), each running a node of one three-node JetStream cluster
// (internal/natsnode, nats-server started in-process) and its own gaolerd on a private bus. Only h1's
// jail matches the test's failure entries; h2 and h3 ban only what the fleet brings them.

// natsnodeBinary is internal/natsnode, built with gaolerd.
func natsnodeBinary(t testing.TB) string { return filepath.Join(binaries(t), "natsnode") }

// fleetNode is one host of the test fleet.
type fleetNode struct {
	name     string
	ns       string
	fd       int
	v4       netip.Addr
	bus      string // its private system bus
	cfg      string
	d        *daemonProc
	store    string    // its nats node's storage
	nats     *exec.Cmd // its nats node, while running
	natsDone chan error
	conn     *nftables.Conn
}

// testFleet is the three hosts and what they share.
type testFleet struct {
	t     testing.TB
	hosts []*fleetNode
	run   string // the GAOLER_FLEET_RUN field value that h1's jail matches
}

// newTestFleet builds the network, starts the cluster and the three gaolerds, and waits until each
// host's fleet is connected and watches both others.
func newTestFleet(t testing.TB, extra map[string]string) *testFleet {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Journald(t)
	bin := natsnodeBinary(t)
	f := &testFleet{t: t, run: fmt.Sprintf("%d-%d", os.Getpid(), rand.IntN(1<<30))}
	br, _ := testenv.NetNS(t)
	testenv.NSExec(t, br, "ip", "link", "add", "br0", "type", "bridge")
	testenv.NSExec(t, br, "ip", "link", "set", "br0", "up")
	for i := 1; i <= 3; i++ {
		h := &fleetNode{name: fmt.Sprintf("h%d", i), v4: netip.MustParseAddr(fmt.Sprintf("192.0.2.1%d", i))}
		h.ns, h.fd = testenv.NetNS(t)
		port := "p" + h.name
		testenv.NSExec(t, br, "ip", "link", "add", port, "type", "veth", "peer", "name", "veth0", "netns", h.ns)
		testenv.NSExec(t, br, "ip", "link", "set", port, "master", "br0", "up")
		testenv.NSExec(t, h.ns, "ip", "addr", "add", h.v4.String()+"/24", "dev", "veth0")
		testenv.NSExec(t, h.ns, "ip", "addr", "add", fmt.Sprintf("2001:db8:f1::1%d/64", i), "dev", "veth0", "nodad")
		testenv.NSExec(t, h.ns, "ip", "link", "set", "veth0", "up")
		h.store = t.TempDir()
		h.bus = testenv.SystemBus(t)
		f.hosts = append(f.hosts, h)
	}
	for _, h := range f.hosts {
		f.startNATS(h, bin)
	}
	for i, h := range f.hosts {
		match := fmt.Sprintf(`["_UID=0", "_COMM=sshd", "GAOLER_FLEET_RUN=%s", "+", "_UID=0", "_COMM=", "GAOLER_FLEET_RUN=%s"]`, f.run, f.run)
		if i > 0 {
			match = fmt.Sprintf(`["_UID=0", "GAOLER_FLEET_RUN=elsewhere-%s"]`, f.run) // sees nothing
		}
		var servers []string
		for k := range f.hosts { // its own node first
			o := f.hosts[(i+k)%3]
			servers = append(servers, fmt.Sprintf("%q", "nats://"+o.v4.String()+":4222"))
		}
		body := fmt.Sprintf("[defaults]\nmaxretry = 1\nfindtime = \"1h\"\nbantime = \"1h\"\n%s\n[jail.sshd]\nenabled = true\njournal_match = %s\n\n"+
			"[fleet]\nservers = [%s]\nhost = %q\nmax_bantime = \"1d\"\npeer_rate = 1000\n",
			extra[h.name], match, strings.Join(servers, ", "), h.name)
		h.cfg, _ = testConfig(t, body)
		f.startDaemon(h)
	}
	for _, h := range f.hosts {
		conn, err := nftables.New(nftables.WithNetNSFd(h.fd))
		if err != nil {
			t.Fatal(err)
		}
		h.conn = conn
	}
	f.waitWatching(60 * time.Second)
	return f
}

func (f *testFleet) startNATS(h *fleetNode, bin string) {
	t := f.t
	var routes []string
	for _, o := range f.hosts {
		routes = append(routes, "nats-route://"+o.v4.String()+":6222")
	}
	idx := h.name[1:]
	cmd := exec.Command("ip", "netns", "exec", h.ns, bin, "-name", "n"+idx, "-host", h.v4.String(),
		"-port", "4222", "-cluster-port", "6222", "-routes", strings.Join(routes, ","), "-store", h.store)
	log := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{b: log}, &lockedWriter{b: log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.nats, h.natsDone = cmd, make(chan error, 1)
	done := h.natsDone
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		done <- nil
		if t.Failed() {
			lockedMu.Lock()
			t.Logf("natsnode n%s:\n%s", idx, log.String())
			lockedMu.Unlock()
		}
	})
}

// stopNATS stops h's node (SIGTERM, then waits).
func (f *testFleet) stopNATS(h *fleetNode) {
	h.nats.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-h.natsDone:
		h.natsDone <- err
	case <-time.After(15 * time.Second):
		f.t.Fatalf("natsnode of %s did not stop", h.name)
	}
}

func (f *testFleet) startDaemon(h *fleetNode) {
	h.d = startDaemon(f.t, h.ns, h.cfg, "DBUS_SYSTEM_BUS_ADDRESS="+h.bus)
	h.d.waitReady(f.t, h.ns)
}

// client dials h's gaolerd over its bus.
func (f *testFleet) client(h *fleetNode) *bus.Client {
	f.t.Helper()
	var c *bus.Client
	if !waitFor(15*time.Second, func() bool {
		var err error
		if c, err = bus.DialAddress(h.bus); err != nil {
			return false
		}
		if _, err = c.Version(); err != nil {
			c.Close()
			return false
		}
		return true
	}) {
		f.t.Fatalf("%s's gaolerd is not on its bus:\n%s", h.name, h.d.output())
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// status is h's fleet status, or a zero reply when its gaolerd does not answer.
func (f *testFleet) status(h *fleetNode) bus.FleetReply {
	c, err := bus.DialAddress(h.bus)
	if err != nil {
		return bus.FleetReply{}
	}
	defer c.Close()
	r, _ := c.Fleet()
	return r
}

// waitWatching waits until every host is connected and watches the two others.
func (f *testFleet) waitWatching(d time.Duration) {
	f.t.Helper()
	if !waitFor(d, func() bool {
		for _, h := range f.hosts {
			r := f.status(h)
			watching := 0
			for _, p := range r.Peers {
				if p.Watching {
					watching++
				}
			}
			if !r.Connected || watching < 2 {
				return false
			}
		}
		return true
	}) {
		for _, h := range f.hosts {
			f.t.Logf("%s: %+v\n%s", h.name, f.status(h), h.d.output())
		}
		f.t.Fatalf("the fleet did not connect within %s", d)
	}
}

// has says whether h's kernel bans a in the sshd jail's address sets.
func (h *fleetNode) has(t testing.TB, a netip.Addr) bool {
	name := "sshd_v4"
	key := a.AsSlice()
	if a.Is6() {
		name = "sshd_v6"
	}
	table := &nftables.Table{Name: "gaoler", Family: nftables.TableFamilyINet}
	s, err := h.conn.GetSetByName(table, name)
	if err != nil {
		return false
	}
	els, err := h.conn.GetSetElements(s)
	if err != nil {
		return false
	}
	for _, e := range els {
		if string(e.Key) == string(key) {
			return true
		}
	}
	return false
}

// fail writes one sshd failure of a that h1's jail counts (maxretry 1: a ban).
func (f *testFleet) fail(a netip.Addr) {
	e := sshdFailure(a, "root", 2000+rand.IntN(60000))
	e["GAOLER_FLEET_RUN"] = f.run
	testenv.SendAs(f.t, "sshd", e)
}

// waitAll waits until every host in hs bans a (want) or none does (!want), and returns how long it took.
func waitAll(t testing.TB, d time.Duration, a netip.Addr, want bool, hs ...*fleetNode) (time.Duration, bool) {
	start := time.Now()
	ok := waitFor(d, func() bool {
		for _, h := range hs {
			if h.has(t, a) != want {
				return false
			}
		}
		return true
	})
	return time.Since(start), ok
}

func TestFleetEndToEnd(t *testing.T) {
	ignored := netip.MustParseAddr("198.51.100.66")
	f := newTestFleet(t, map[string]string{"h2": `ignoreip = ["127.0.0.0/8", "::1", "198.51.100.66"]`})
	h1, h2, h3 := f.hosts[0], f.hosts[1], f.hosts[2]
	net := randomNet(t)
	addr := func(n int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("%s::%x", net, n)) }

	// A failure seen by h1 alone bans on h1, then on h2 and h3 within a second.
	sig1, sig2 := watchSignals(t, "h1", h1.bus), watchSignals(t, "h2", h2.bus)
	x := addr(1)
	f.fail(x)
	if _, ok := waitAll(t, 10*time.Second, x, true, h1); !ok {
		t.Fatalf("h1 did not ban %s:\n%s", x, h1.d.output())
	}
	if took, ok := waitAll(t, 10*time.Second, x, true, h2, h3); !ok || took > time.Second {
		t.Fatalf("%s in h2's and h3's kernels after %s (ok %v), want within 1s", x, took, ok)
	} else {
		t.Logf("h1's ban of %s reached h2 and h3 in %s after h1's kernel had it", x, took)
	}
	// The bus signals carry the origin: h1's filter (with its rule) on h1, the peer h1 on h2; the
	// SPEC's Banned is sent as well.
	sig2.wait(t, 5*time.Second, "Banned", x.String())
	if got, want := origin(sig1.wait(t, 5*time.Second, "BannedEx", x.String())), "origin=filter uid=0 peer= rule=failed"; got != want {
		t.Errorf("h1's BannedEx of %s: %s, want %s", x, got, want)
	}
	if got, want := origin(sig2.wait(t, 5*time.Second, "BannedEx", x.String())), "origin=peer uid=0 peer=h1 rule="; got != want {
		t.Errorf("h2's BannedEx of %s: %s, want %s", x, got, want)
	}
	// So do the journal's ban entries: h2's and h3's name the peer h1 (all three log to this host's journal).
	if !waitFor(10*time.Second, func() bool {
		out, err := exec.Command("journalctl", "-q", "--no-pager", "-o", "cat", "MESSAGE_ID="+events.MsgBan,
			events.FieldAddress+"="+x.String(), events.FieldOrigin+"=peer", events.FieldPeer+"=h1").Output()
		return err == nil && strings.Count(strings.TrimSpace(string(out)), "\n") >= 1
	}) {
		t.Errorf("the journal lacks h2's and h3's ban entries of %s with GAOLER_ORIGIN=peer GAOLER_PEER=h1", x)
	}
	// A manual ban on h2 is the caller's (root), there, and h2's on h1; its unban says who lifted it.
	m := addr(9)
	c2 := f.client(h2)
	if _, err := c2.Ban("sshd", m.String(), 600); err != nil {
		t.Fatal(err)
	}
	if got, want := origin(sig2.wait(t, 5*time.Second, "BannedEx", m.String())), "origin=manual uid=0 peer= rule="; got != want {
		t.Errorf("h2's BannedEx of its manual ban of %s: %s, want %s", m, got, want)
	}
	if got, want := origin(sig1.wait(t, 10*time.Second, "BannedEx", m.String())), "origin=peer uid=0 peer=h2 rule="; got != want {
		t.Errorf("h1's BannedEx of h2's manual ban of %s: %s, want %s", m, got, want)
	}
	// ListBansEx, the bans as a subscriber starts from, says the same.
	details, err := c2.BanDetails("sshd")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range details {
		got[b.Address] = fmt.Sprintf("origin=%s uid=%d peer=%s rule=%s", b.Origin, b.UID, b.Peer, b.Rule)
	}
	if want := "origin=peer uid=0 peer=h1 rule="; got[x.String()] != want {
		t.Errorf("h2's ListBansEx for %s: %q, want %q", x, got[x.String()], want)
	}
	if want := "origin=manual uid=0 peer= rule="; got[m.String()] != want {
		t.Errorf("h2's ListBansEx for %s: %q, want %q", m, got[m.String()], want)
	}
	if _, err := c2.Unban("sshd", m.String()); err != nil {
		t.Fatal(err)
	}
	if got, want := origin(sig2.wait(t, 5*time.Second, "UnbannedEx", m.String())), "reason=manual origin=manual uid=0 peer= by=manual by_uid=0 by_peer="; got != want {
		t.Errorf("h2's UnbannedEx of %s: %s, want %s", m, got, want)
	}

	// An address in h2's ignoreip is banned on h1 and h3, never on h2, and h2 says it refused it.
	f.fail(ignored)
	if _, ok := waitAll(t, 10*time.Second, ignored, true, h1, h3); !ok {
		t.Fatalf("%s not banned on h1 and h3", ignored)
	}
	time.Sleep(500 * time.Millisecond)
	if h2.has(t, ignored) {
		t.Fatalf("h2 banned %s, which its ignoreip holds", ignored)
	}
	if r := f.status(h2); r.Refused < 1 {
		t.Fatalf("h2's fleet status %+v counts no refusal", r)
	}

	// An unban on h1 is lifted on h2 and h3.
	c1 := f.client(h1)
	if _, err := c1.Unban("sshd", x.String()); err != nil {
		t.Fatal(err)
	}
	if took, ok := waitAll(t, 10*time.Second, x, false, h1, h2, h3); !ok {
		t.Fatalf("%s still banned after h1's unban (%s)", x, took)
	}
	if got, want := origin(sig2.wait(t, 5*time.Second, "UnbannedEx", x.String())), "reason=peer origin=peer uid=0 peer=h1 by=peer by_uid=0 by_peer=h1"; got != want {
		t.Errorf("h2's UnbannedEx of %s after h1's unban: %s, want %s", x, got, want)
	}

	// h3 restarted while h1 bans (and unbans) catches up.
	y, z := addr(2), addr(3)
	f.fail(z)
	if _, ok := waitAll(t, 10*time.Second, z, true, h1, h2, h3); !ok {
		t.Fatalf("%s not banned everywhere", z)
	}
	h3.d.stop(t, syscall.SIGTERM)
	f.fail(y)
	if _, err := c1.Unban("sshd", z.String()); err != nil {
		t.Fatal(err)
	}
	if _, ok := waitAll(t, 10*time.Second, y, true, h1, h2); !ok {
		t.Fatalf("%s not banned on h1 and h2", y)
	}
	f.startDaemon(h3)
	if _, ok := waitAll(t, 20*time.Second, y, true, h3); !ok {
		t.Fatalf("h3 restarted did not catch up with %s:\n%s", y, h3.d.output())
	}
	if _, ok := waitAll(t, 20*time.Second, z, false, h3); !ok {
		t.Fatalf("h3 restarted still bans %s, which h1 lifted while h3 was down", z)
	}

	// The cluster loses h1's own node: h1's bans still reach h2 and h3.
	f.stopNATS(h1)
	w := addr(4)
	f.fail(w)
	if _, ok := waitAll(t, 5*time.Second, w, true, h1); !ok {
		t.Fatalf("h1 did not ban %s with its node down", w)
	}
	if took, ok := waitAll(t, 30*time.Second, w, true, h2, h3); !ok {
		t.Fatalf("%s not on h2 and h3 %s after a node was lost:\nh1: %+v\n%s", w, took, f.status(h1), h1.d.output())
	} else {
		t.Logf("with a node lost, h1's ban reached h2 and h3 in %s", took)
	}

	// No engine reachable: h1 bans at once, and publishes when the cluster is back.
	f.stopNATS(h2)
	f.stopNATS(h3)
	v := addr(5)
	sent := time.Now()
	f.fail(v)
	if took, ok := waitAll(t, 5*time.Second, v, true, h1); !ok || took > 2*time.Second {
		t.Fatalf("with no cluster h1 banned %s after %s (ok %v)", v, time.Since(sent), ok)
	}
	if !waitFor(5*time.Second, func() bool { r := f.status(h1); return !r.Connected && r.Outbox >= 1 }) {
		t.Fatalf("h1's fleet status with no cluster: %+v", f.status(h1))
	}
	bin := natsnodeBinary(t)
	for _, h := range f.hosts {
		f.startNATS(h, bin)
	}
	if took, ok := waitAll(t, 60*time.Second, v, true, h2, h3); !ok {
		t.Fatalf("%s not on h2 and h3 %s after the cluster came back:\n%s", v, took, h1.d.output())
	} else {
		t.Logf("the ban made with no cluster reached h2 and h3 %s after the nodes were restarted", took)
	}
}

// BenchmarkFleetPropagation measures, over 300 manual bans on h1 (one every 20 ms), the time from
// h1's Ban call returning (the ban is in h1's kernel) to the address being in both h2's and h3's
// kernel sets, and reports p50, p99 and max. The reference, in the same run, is the same round trip
// with no fleet: h1's Ban call itself, bus to kernel.
func BenchmarkFleetPropagation(b *testing.B) {
	f := newTestFleet(b, nil)
	h1, h2, h3 := f.hosts[0], f.hosts[1], f.hosts[2]
	c := f.client(h1)
	const bans = 300
	var lat, ref []time.Duration
	for n := range b.N {
		for i := range bans {
			a := netip.MustParseAddr(fmt.Sprintf("2001:db8:be:%x::%x", n, i+1))
			start := time.Now()
			if _, err := c.Ban("sshd", a.String(), 3600); err != nil {
				b.Fatal(err)
			}
			done := time.Now()
			ref = append(ref, done.Sub(start))
			deadline := done.Add(10 * time.Second)
			for !(h2.has(b, a) && h3.has(b, a)) {
				if time.Now().After(deadline) {
					b.Fatalf("ban %d (%s) not on h2 and h3 after 10s", i, a)
				}
				time.Sleep(500 * time.Microsecond)
			}
			lat = append(lat, time.Since(done))
			time.Sleep(20 * time.Millisecond)
		}
	}
	q := func(d []time.Duration, p float64) float64 {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(lat, 0.5), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	b.ReportMetric(q(lat, 1), "max-ms")
	b.ReportMetric(q(ref, 0.5), "ref-ban-p50-ms")
	b.ReportMetric(q(ref, 0.99), "ref-ban-p99-ms")
}
