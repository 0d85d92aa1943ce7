package fleet

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

func TestKeys(t *testing.T) {
	for _, tc := range []struct{ jail, prefix, key string }{
		{"sshd", "192.0.2.7/32", "sshd.192.0.2.7"},
		{"sshd", "2001:db8::7/128", "sshd.2001_db8__7"},
		{"web_1", "2001:db8:1::/64", "web_1.2001_db8_1__/64"},
		{"nginx-auth", "198.51.100.0/24", "nginx-auth.198.51.100.0/24"},
	} {
		p := netip.MustParsePrefix(tc.prefix)
		if k := Key(tc.jail, p); k != tc.key {
			t.Errorf("Key(%s, %s) = %q, want %q", tc.jail, p, k, tc.key)
		}
		j, q, err := ParseKey(tc.key)
		if err != nil || j != tc.jail || q != p {
			t.Errorf("ParseKey(%q) = %s, %s, %v", tc.key, j, q, err)
		}
	}
	for _, bad := range []string{"sshd", "sshd.", "sshd.1.2.3", "sshd.192.0.2.7/24", "sshd.__ffff_192.0.2.7", "a.b.192.0.2.7",
		"sshd.2001_DB8__7", "sshd.192.0.2.7/32", ".192.0.2.7", "sshd.fe80__1%eth0"} {
		if _, _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("sshd.192.0.2.7")
	f.Add("sshd.2001_db8__/64")
	f.Fuzz(func(t *testing.T, key string) {
		j, p, err := ParseKey(key)
		if err == nil && Key(j, p) != key {
			t.Fatalf("ParseKey(%q) = %s %s, which Key writes %q", key, j, p, Key(j, p))
		}
	})
}

func TestValueChecks(t *testing.T) {
	p := netip.MustParsePrefix("192.0.2.7/32")
	good := `{"origin":"h1","jail":"sshd","address":"192.0.2.7","count":1,"reason":"filter","bantime":600}`
	if _, err := decodeValue([]byte(good), "h1", "sshd", p); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{
		"other origin":  `{"origin":"h2","jail":"sshd","address":"192.0.2.7","count":1,"bantime":600}`,
		"other address": `{"origin":"h1","jail":"sshd","address":"192.0.2.8","count":1,"bantime":600}`,
		"other jail":    `{"origin":"h1","jail":"web","address":"192.0.2.7","count":1,"bantime":600}`,
		"no bantime":    `{"origin":"h1","jail":"sshd","address":"192.0.2.7","count":1}`,
		"not json":      `ban 192.0.2.7`,
	} {
		if _, err := decodeValue([]byte(v), "h1", "sshd", p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestPropagation: a ban on h1 is applied on h2 and h3 with h1 as its origin, and not published
// again by them; an unban on h1 is lifted on both.
func TestPropagation(t *testing.T) {
	s := startServer(t, 0, nil)
	urls := []string{s.ClientURL()}
	h1, h2, h3 := startHost(t, "h1", urls, "", nil), startHost(t, "h2", urls, "", nil), startHost(t, "h3", urls, "", nil)
	waitConnected(t, h1, h2, h3)

	for _, addr := range []string{"192.0.2.7/32", "2001:db8::7/128"} {
		h1.d.localBan(h1.f, "sshd", addr, time.Hour)
		key := Key("sshd", netip.MustParsePrefix(addr))
		for _, h := range []*host{h2, h3} {
			waitFor(t, 5*time.Second, h.name+" applies "+key, func() bool {
				o, ok := h.d.banned(key)
				return ok && o == events.Origin{Kind: events.OriginPeer, Peer: "h1"}
			})
			// The daemon announces the applied ban; the fleet must not publish it again.
			b := h.d.Bans()[0]
			h.f.Handle(b)
		}
	}
	b := <-h2.d.applied
	if b.For < 59*time.Minute || b.For > time.Hour || b.Count != 1 || b.Reason != "filter: password" {
		t.Errorf("applied %+v", b)
	}
	time.Sleep(300 * time.Millisecond) // let a wrong republication happen, if it would
	for _, h := range []*host{h2, h3} {
		if st := h.f.Status(); st.Published != 0 || st.Outbox != 0 || st.Applied != 2 {
			t.Errorf("%s: status %+v, want nothing published and 2 applied", h.name, st)
		}
	}

	h1.d.localUnban(h1.f, "sshd", "192.0.2.7/32")
	key := Key("sshd", netip.MustParsePrefix("192.0.2.7/32"))
	for _, h := range []*host{h2, h3} {
		waitFor(t, 5*time.Second, h.name+" lifts "+key, func() bool { _, ok := h.d.banned(key); return !ok })
	}
	if _, ok := h2.d.banned(Key("sshd", netip.MustParsePrefix("2001:db8::7/128"))); !ok {
		t.Error("the other ban was lifted too")
	}
	if n := h2.log.count(events.MsgFleetApplied); n != 2 {
		t.Errorf("h2 logged %d applied entries, want 2", n)
	}
}

// TestIgnoredAndCapped: h2's ignoreip wins over h1's ban, which is refused and logged; a ban
// longer than max_bantime is applied for max_bantime.
func TestIgnoredAndCapped(t *testing.T) {
	s := startServer(t, 0, nil)
	urls := []string{s.ClientURL()}
	h1 := startHost(t, "h1", urls, "", nil)
	h2 := startHost(t, "h2", urls, "", func(c *config.Fleet) { c.MaxBanTime = 10 * time.Minute })
	h2.d.ignore = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")}
	waitConnected(t, h1, h2)
	h1.d.localBan(h1.f, "sshd", "192.0.2.9/32", time.Hour)
	h1.d.localBan(h1.f, "sshd", "192.0.2.100/32", 24*time.Hour)
	b := <-h2.d.applied
	if b.Prefix != netip.MustParsePrefix("192.0.2.100/32") || b.For != 10*time.Minute {
		t.Fatalf("applied %+v, want 192.0.2.100 for 10m", b)
	}
	waitFor(t, 5*time.Second, "a refusal logged", func() bool { return h2.log.count(events.MsgFleetRefused) == 1 })
	if _, ok := h2.d.banned(Key("sshd", netip.MustParsePrefix("192.0.2.9/32"))); ok {
		t.Fatal("an address in h2's ignoreip is banned on h2")
	}
	if st := h2.f.Status(); st.Refused != 1 || st.Applied != 1 {
		t.Fatalf("status %+v", st)
	}
}

// TestFlood: a peer writing more than peer_rate bans a second gets only its burst applied; the rest
// are refused and logged in one entry, not one each. h2's clock stands still, so no token comes back
// while the flood lasts.
func TestFlood(t *testing.T) {
	s := startServer(t, 0, nil)
	urls := []string{s.ClientURL()}
	h1 := startHost(t, "h1", urls, "", nil)
	frozen := time.Now()
	h2 := runHost(t, "h2", urls, func(c *config.Fleet) { c.PeerRate = 2 }, newFakeDaemon(), Options{Now: func() time.Time { return frozen }}) // burst 20
	waitConnected(t, h1, h2)
	for i := 0; i < 100; i++ {
		h1.d.localBan(h1.f, "sshd", netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()+"/32", time.Hour)
	}
	waitFor(t, 10*time.Second, "all 100 seen by h2", func() bool { st := h2.f.Status(); return st.Applied+int(st.Refused) >= 100 })
	st := h2.f.Status()
	if st.Applied != 20 || st.Refused != 80 {
		t.Errorf("applied %d and refused %d of a flood of 100 at 2/s with a burst of 20", st.Applied, st.Refused)
	}
	if n := h2.log.count(events.MsgFleetRefused); n != 1 {
		t.Errorf("%d refusal entries, want 1 (the others counted in the next)", n)
	}
}

// TestExpiry: a peer's ban whose key's TTL runs out in its bucket is lifted here.
func TestExpiry(t *testing.T) {
	s := startServer(t, 0, nil)
	urls := []string{s.ClientURL()}
	h1, h2 := startHost(t, "h1", urls, "", nil), startHost(t, "h2", urls, "", nil)
	waitConnected(t, h1, h2)
	h2.d.now = func() time.Time { return time.Now().Add(-time.Hour) } // keep the fake's own expiry out of the way
	h1.d.localBan(h1.f, "sshd", "203.0.113.5/32", 2*time.Second)
	<-h2.d.applied
	select {
	case k := <-h2.d.lifted:
		if k != "sshd.203.0.113.5" {
			t.Fatalf("lifted %s", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server's expiry marker did not lift the ban")
	}
}

// TestOfflineThenBack: with no server reachable h1 keeps its ban (the fake's kernel has it at once)
// and the outbox holds it; when the server starts it is published and h2 applies it. The outbox
// survives a restart of h1 while the cluster is away.
func TestOfflineThenBack(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + itoa(port)
	dir := t.TempDir()
	h1 := startHost(t, "h1", []string{url}, dir, nil)
	start := time.Now()
	h1.d.localBan(h1.f, "sshd", "192.0.2.44/32", time.Hour)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Handle took %s with no cluster", took)
	}
	if st := h1.f.Status(); st.Connected || st.Outbox != 1 {
		t.Fatalf("status %+v, want disconnected with 1 in the outbox", st)
	}
	d := h1.d
	h1.stop() // saves the outbox
	h1 = restartHost(t, "h1", []string{url}, dir, nil, d)
	if st := h1.f.Status(); st.Outbox != 1 {
		t.Fatalf("after a restart the outbox holds %d, want 1", st.Outbox)
	}
	startServer(t, port, nil)
	h2 := startHost(t, "h2", []string{url}, "", nil)
	waitFor(t, 15*time.Second, "h2 applies the ban made while the cluster was away", func() bool {
		_, ok := h2.d.banned("sshd.192.0.2.44")
		return ok
	})
	waitFor(t, 5*time.Second, "the outbox drained", func() bool { return h1.f.Status().Outbox == 0 })
}

// TestCatchUp: h3, stopped while h1 bans and unbans, applies what is still banned and lifts what was
// lifted while it was away, from the snapshot of h1's bucket.
func TestCatchUp(t *testing.T) {
	s := startServer(t, 0, nil)
	urls := []string{s.ClientURL()}
	h1, h3 := startHost(t, "h1", urls, "", nil), startHost(t, "h3", urls, "", nil)
	waitConnected(t, h1, h3)
	h1.d.localBan(h1.f, "sshd", "192.0.2.1/32", time.Hour)
	<-h3.d.applied
	d3 := h3.d
	h3.stop()
	h1.d.localUnban(h1.f, "sshd", "192.0.2.1/32")
	h1.d.localBan(h1.f, "sshd", "192.0.2.2/32", time.Hour)
	waitFor(t, 5*time.Second, "h1 published", func() bool { return h1.f.Status().Outbox == 0 })

	h3 = restartHost(t, "h3", urls, "", nil, d3) // the same daemon state, as after a restart
	waitFor(t, 10*time.Second, "h3 catches up", func() bool {
		_, old := d3.banned("sshd.192.0.2.1")
		_, cur := d3.banned("sshd.192.0.2.2")
		return !old && cur
	})
}

// TestReconcileOwn: a ban the outbox lost (a crash before it was saved) is published when the host
// connects, from the daemon's running bans; a key with no running ban is purged.
func TestReconcileOwn(t *testing.T) {
	s := startServer(t, 0, nil)
	urls := []string{s.ClientURL()}
	h2 := startHost(t, "h2", urls, "", nil)
	h1 := startHost(t, "h1", urls, "", nil)
	waitConnected(t, h1, h2)
	h1.d.localBan(h1.f, "sshd", "192.0.2.50/32", time.Hour)
	<-h2.d.applied
	d1 := h1.d
	h1.stop()
	// While h1 is down its daemon unbans 192.0.2.50 and bans 192.0.2.51, and the outbox never hears.
	d1.mu.Lock()
	delete(d1.bans, "sshd.192.0.2.50")
	d1.mu.Unlock()
	d1.localBan(nil, "sshd", "192.0.2.51/32", time.Hour)
	h1 = restartHost(t, "h1", urls, "", nil, d1)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range h1.log.entries {
				t.Log("h1:", e.msg)
			}
			for _, e := range h2.log.entries {
				t.Log("h2:", e.msg)
			}
		}
	})
	waitFor(t, 10*time.Second, "h2 follows h1's reconciled bucket", func() bool {
		_, old := h2.d.banned("sshd.192.0.2.50")
		_, cur := h2.d.banned("sshd.192.0.2.51")
		return !old && cur
	})
}

// TestHostCannotWriteOthersBucket: with the documented account layout, h2's user may write its own
// bucket, not h1's, and may not delete or purge a stream.
func TestHostCannotWriteOthersBucket(t *testing.T) {
	s := startServer(t, 0, func(o *server.Options) {
		o.Users = []*server.User{hostUser("h1"), hostUser("h2")}
	})
	connect := func(user string) jetstream.JetStream {
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, "secret-"+user),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js1, js2 := connect("h1"), connect("h2")
	for _, c := range []struct {
		js   jetstream.JetStream
		host string
	}{{js1, "h1"}, {js2, "h2"}} {
		if _, err := c.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket(c.host), History: 1, LimitMarkerTTL: markerTTL}); err != nil {
			t.Fatalf("%s creates its own bucket: %v", c.host, err)
		}
	}
	if _, err := js2.PublishMsg(ctx, &nats.Msg{Subject: "$KV.gaoler-h2.sshd.192.0.2.7", Data: []byte("{}")}, jetstream.WithMsgTTL(time.Minute)); err != nil {
		t.Fatalf("h2 writes its own bucket: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := js2.Publish(wctx, "$KV.gaoler-h1.sshd.192.0.2.7", []byte("{}")); err == nil {
		t.Fatal("h2 wrote h1's bucket")
	}
	wcancel()
	kv1, err := js2.KeyValue(ctx, Bucket("h1"))
	if err != nil {
		t.Fatalf("h2 opens h1's bucket to read it: %v", err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 2*time.Second)
	if _, err := kv1.Put(wctx, "sshd.192.0.2.8", []byte("{}")); err == nil {
		t.Fatal("h2 put a key in h1's bucket")
	}
	wcancel()
	for _, name := range []string{Bucket("h1"), Bucket("h2")} {
		if err := js2.DeleteKeyValue(ctx, name); err == nil {
			t.Fatalf("h2 deleted the bucket %s", name)
		}
		if st, err := js2.Stream(ctx, "KV_"+name); err == nil {
			if err := st.Purge(ctx); err == nil {
				t.Fatalf("h2 purged the stream of %s", name)
			}
		}
	}
	if _, err := kv1.Get(ctx, "sshd.192.0.2.8"); err == nil {
		t.Fatal("the key h2 wrote is in h1's bucket")
	}
}

// TestNoEchoAfterRestart: a peer's ban applied here is never published as this host's, even after a
// restart in which the daemon's state no longer says the ban came from a peer.
func TestNoEchoAfterRestart(t *testing.T) {
	s := startServer(t, 0, nil)
	urls := []string{s.ClientURL()}
	dir := t.TempDir()
	h1, h2 := startHost(t, "h1", urls, "", nil), startHost(t, "h2", urls, dir, nil)
	waitConnected(t, h1, h2)
	h1.d.localBan(h1.f, "sshd", "192.0.2.60/32", time.Hour)
	<-h2.d.applied
	d2 := h2.d
	h2.stop()
	d2.mu.Lock()
	b := d2.bans["sshd.192.0.2.60"]
	b.Origin = events.Origin{Kind: events.OriginFilter} // the origin lost
	d2.bans["sshd.192.0.2.60"] = b
	d2.mu.Unlock()
	h2 = restartHost(t, "h2", urls, dir, nil, d2)
	waitConnected(t, h1, h2)
	time.Sleep(500 * time.Millisecond)
	if st := h2.f.Status(); st.Published != 0 || st.Outbox != 0 || st.Applied != 1 {
		t.Fatalf("after a restart h2's status is %+v, want nothing published and 1 applied", st)
	}
}
