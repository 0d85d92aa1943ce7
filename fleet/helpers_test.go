package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	sdjournal "github.com/coreos/go-systemd/v22/journal"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
)

// startServer starts an in-process nats-server with JetStream on a loopback port (port 0: any),
// storing in a temporary folder; it is shut down at the end of the test.
func startServer(t testing.TB, port int, mod func(*server.Options)) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	o := &server.Options{
		ServerName: fmt.Sprintf("n%d", port), Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
	}
	if mod != nil {
		mod(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// fakeDaemon is the daemon as the fleet sees it: bans with origins, an ignore list, and a record of
// what peers asked. Its bans end when their time is up, as the kernel's do.
type fakeDaemon struct {
	mu      sync.Mutex
	now     func() time.Time
	bans    map[string]events.Event // Key -> ban
	ignore  []netip.Prefix
	applied chan PeerBan
	lifted  chan string
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{now: time.Now, bans: map[string]events.Event{}, applied: make(chan PeerBan, 1000), lifted: make(chan string, 1000)}
}

func (d *fakeDaemon) Bans() []events.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []events.Event
	for _, b := range d.bans {
		if b.Expires.After(d.now()) {
			out = append(out, b)
		}
	}
	return out
}

func (d *fakeDaemon) ApplyPeerBan(b PeerBan) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.ignore {
		if p.Overlaps(b.Prefix) {
			return fmt.Errorf("%w: %s", jails.ErrIgnored, b.Prefix)
		}
	}
	now := d.now()
	k := Key(b.Jail, b.Prefix)
	if old, ok := d.bans[k]; ok && old.Origin.Kind != events.OriginPeer && old.Expires.After(now.Add(b.For)) {
		return nil
	}
	d.bans[k] = events.Event{Kind: events.Ban, Jail: b.Jail, Prefix: b.Prefix, BannedAt: now, Expires: now.Add(b.For),
		Count: b.Count, Origin: events.Origin{Kind: events.OriginPeer, Peer: b.Peer}}
	d.applied <- b
	return nil
}

func (d *fakeDaemon) LiftPeerBan(jail string, p netip.Prefix, peer string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := Key(jail, p)
	if b, ok := d.bans[k]; ok && b.Origin.Kind == events.OriginPeer && b.Origin.Peer == peer {
		delete(d.bans, k)
		d.lifted <- k
	}
	return nil
}

// banned says whether the fake holds a running ban of key, and from which origin.
func (d *fakeDaemon) banned(key string) (events.Origin, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.bans[key]
	if !ok || !b.Expires.After(d.now()) {
		return events.Origin{}, false
	}
	return b.Origin, true
}

// localBan makes a ban of this host, as the daemon would: in its state, then announced.
func (d *fakeDaemon) localBan(f *Fleet, jail, addr string, dur time.Duration) events.Event {
	p := netip.MustParsePrefix(addr)
	now := time.Now()
	ev := events.Event{Kind: events.Ban, Jail: jail, Prefix: p, BannedAt: now, Expires: now.Add(dur), Count: 1,
		Origin: events.Origin{Kind: events.OriginFilter}, Rule: "password"}
	d.mu.Lock()
	d.bans[Key(jail, p)] = ev
	d.mu.Unlock()
	if f != nil {
		f.Handle(ev)
	}
	return ev
}

// localUnban lifts a ban of this host by hand.
func (d *fakeDaemon) localUnban(f *Fleet, jail, addr string) {
	p := netip.MustParsePrefix(addr)
	d.mu.Lock()
	ev := d.bans[Key(jail, p)]
	delete(d.bans, Key(jail, p))
	d.mu.Unlock()
	ev.Kind, ev.Reason, ev.Origin = events.Unban, "manual", events.Origin{Kind: events.OriginManual}
	f.Handle(ev)
}

// testLog keeps the entries the fleet logs.
type testLog struct {
	mu      sync.Mutex
	entries []logEntry
}

type logEntry struct {
	at     time.Time
	id     string
	fields map[string]string
	msg    string
}

func (l *testLog) Event(id string, _ sdjournal.Priority, fields map[string]string, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, logEntry{time.Now(), id, fields, fmt.Sprintf(format, args...)})
}

func (l *testLog) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.entries {
		if e.id == id {
			n++
		}
	}
	return n
}

// host is one fleet member under test: its fake daemon, its Fleet, and the means to stop it.
type host struct {
	name   string
	d      *fakeDaemon
	f      *Fleet
	log    *testLog
	cancel context.CancelFunc
	done   chan struct{}
}

// startHost runs a Fleet for name against urls, with state in dir ("" for none).
func startHost(t testing.TB, name string, urls []string, dir string, mod func(*config.Fleet)) *host {
	t.Helper()
	return restartHost(t, name, urls, dir, mod, newFakeDaemon())
}

// restartHost is startHost with the daemon d: a host started again with the state it had.
func restartHost(t testing.TB, name string, urls []string, dir string, mod func(*config.Fleet), d *fakeDaemon) *host {
	t.Helper()
	return runHost(t, name, urls, mod, d, Options{StateDirectory: dir})
}

// runHost runs a Fleet for name with the daemon d and the options o (Log and RescanEvery are set here).
func runHost(t testing.TB, name string, urls []string, mod func(*config.Fleet), d *fakeDaemon, o Options) *host {
	t.Helper()
	cfg := config.Fleet{Servers: urls, Host: name, MaxBanTime: 7 * 24 * time.Hour, Replicas: 1, PeerRate: 1000}
	if mod != nil {
		mod(&cfg)
	}
	h := &host{name: name, d: d, log: &testLog{}, done: make(chan struct{})}
	o.Log, o.RescanEvery = h.log, 200*time.Millisecond
	f, err := New(cfg, h.d, o)
	if err != nil {
		t.Fatal(err)
	}
	h.f = f
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		if err := f.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *host) stop() {
	h.cancel()
	<-h.done
}

// waitFor polls cond every 5 ms for up to d; the loop is bounded by d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitConnected waits until every host is connected and watching every other.
func waitConnected(t testing.TB, hs ...*host) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range hs {
				h.log.mu.Lock()
				for _, e := range h.log.entries {
					t.Logf("%s %s: %s", e.at.Format("15:04:05.000"), h.name, e.msg)
				}
				h.log.mu.Unlock()
			}
		}
	})
	waitFor(t, 30*time.Second, "hosts connected and watching each other", func() bool {
		for _, h := range hs {
			st := h.f.Status()
			if !st.Connected {
				return false
			}
			watching := 0
			for _, p := range st.Peers {
				if p.Watching {
					watching++
				}
			}
			if watching < len(hs)-1 {
				return false
			}
		}
		return true
	})
}
