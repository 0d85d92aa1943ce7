package fleet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	sdjournal "github.com/coreos/go-systemd/v22/journal"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

// PeerBan is a peer's ban as the daemon is asked to apply it.
type PeerBan struct {
	Jail   string
	Prefix netip.Prefix
	For    time.Duration // from now; already capped at max_bantime
	Peer   string        // the origin host
	Count  int           // the peer's ban count
	Reason string        // the peer's reason ("filter: <rule>", "manual")
}

// Daemon is what the fleet needs of gaolerd. Its methods are called from the fleet's goroutines,
// never while the daemon calls Handle.
type Daemon interface {
	// Bans returns the running bans of every jail, with their origins (Kind Ban).
	Bans() []events.Event
	// ApplyPeerBan bans b.Prefix in b.Jail for b.For with origin OriginPeer(b.Peer), as any ban: in
	// the kernel, checkpointed, announced (the fleet does not publish it again). It returns an error
	// matching jails.ErrIgnored for an address the jail ignores, jails.ErrNoSuchJail for a jail this
	// host does not run. A ban of this host that lasts longer is kept as it is.
	ApplyPeerBan(b PeerBan) error
	// LiftPeerBan lifts the jail's ban of prefix if it was applied from peer (a ban of another origin
	// stays); lifting what is not banned is no error.
	LiftPeerBan(jail string, prefix netip.Prefix, peer string) error
}

// Logger writes gaolerd's structured journal entries; daemon.Logger is one.
type Logger interface {
	Event(id string, pri sdjournal.Priority, fields map[string]string, format string, args ...any)
}

// Options are what New needs besides the [fleet] table.
type Options struct {
	StateDirectory string // where the outbox is saved; "" keeps it in memory (tests)
	Log            Logger
	Now            func() time.Time // nil: time.Now
	// RescanEvery is how often the list of buckets is read for new peers (default 10 s).
	RescanEvery time.Duration
}

// Fleet is this host's membership in a fleet. Create it with New, feed it the daemon's events with
// Handle (an events.Hub subscriber), and run it with Run.
type Fleet struct {
	cfg    config.Fleet
	d      Daemon
	log    Logger
	now    func() time.Time
	rescan time.Duration
	out    *outbox

	reconnected chan struct{} // a new connection: reconcile and read the peers again

	mu           sync.Mutex // guards what follows
	nc           *nats.Conn
	connected    bool
	server       string
	published    uint64
	appliedTotal uint64
	appliedDirty bool   // the record of applied peers' bans changed since it was saved
	appliedPath  string // where it is saved; "" for nowhere
	peers        map[string]*peer
	mine         map[string]bool // keys this host's bucket holds, as far as it knows
}

// ErrDisabled is New's answer to a [fleet] table with no servers.
var ErrDisabled = errors.New("fleet: no servers configured")

// New prepares the fleet; it does not connect (Run does). The saved outbox is loaded; a broken
// one is logged and replaced.
func New(cfg config.Fleet, d Daemon, o Options) (*Fleet, error) {
	if !cfg.Enabled() {
		return nil, ErrDisabled
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RescanEvery <= 0 {
		o.RescanEvery = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = discard{}
	}
	out, err := openOutbox(o.StateDirectory)
	if err != nil {
		o.Log.Event("", sdjournal.PriWarning, nil, "%v", err)
	}
	f := &Fleet{
		cfg: cfg, d: d, log: o.Log, now: o.Now, rescan: o.RescanEvery, out: out,
		reconnected: make(chan struct{}, 1),
		peers:       map[string]*peer{},
		mine:        map[string]bool{},
	}
	f.loadApplied(o.StateDirectory)
	return f, nil
}

type discard struct{}

func (discard) Event(string, sdjournal.Priority, map[string]string, string, ...any) {}

// Handle takes one of the daemon's events: a ban or unban of this host goes to the outbox. It never
// waits on the network; events whose origin is a peer, or restorations, are not published.
func (f *Fleet) Handle(ev events.Event) {
	if !f.cfg.Shares(ev.Jail) || ev.Origin.Kind == events.OriginPeer || ev.Origin.Kind == events.OriginRestored {
		return
	}
	key := Key(ev.Jail, ev.Prefix)
	switch ev.Kind {
	case events.Ban:
		f.out.put(op{Key: key, Value: valueOf(f.cfg.Host, ev), Expires: ev.Expires})
	case events.Unban:
		if ev.Reason == "expired" || ev.Reason == "peer" {
			return // the key's TTL ends it in the bucket too; a peer's ban is not ours to lift
		}
		f.out.put(op{Key: key, Purge: true})
	}
}

// valueOf is the bucket value of a ban of this host.
func valueOf(host string, ev events.Event) Value {
	reason := "manual"
	if ev.Origin.Kind == events.OriginFilter {
		reason = "filter"
		if ev.Rule != "" {
			reason += ": " + ev.Rule
		}
	}
	return Value{
		Origin: host, Jail: ev.Jail, Address: ev.Address(), Count: ev.Count, Reason: reason,
		BannedAt: ev.BannedAt.UTC(), BanTime: int64(ev.Expires.Sub(ev.BannedAt).Round(time.Second) / time.Second),
	}
}

// connect dials the cluster. It returns at once: with RetryOnFailedConnect the client keeps trying
// in the background, and the handlers tell Run when it is connected.
func (f *Fleet) connect() (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("gaolerd " + f.cfg.Host),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) { f.setConnected(nc, true) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { f.setConnected(nc, true) }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) { f.setConnected(nc, false) }),
	}
	if f.cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(f.cfg.Credentials))
	}
	if f.cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(f.cfg.TLSCert, f.cfg.TLSKey))
	}
	if f.cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(f.cfg.TLSCA))
	}
	if f.cfg.TLSCert != "" || f.cfg.TLSCA != "" {
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	return nats.Connect(strings.Join(f.cfg.Servers, ","), opts...)
}

func (f *Fleet) setConnected(nc *nats.Conn, up bool) {
	f.mu.Lock()
	was := f.connected
	f.connected = up
	if up {
		f.server = nc.ConnectedUrlRedacted()
	}
	server := f.server
	f.mu.Unlock()
	fields := map[string]string{events.FieldServer: server}
	switch {
	case up:
		f.log.Event(events.MsgFleetConnected, sdjournal.PriInfo, fields, "Fleet: connected to %s as %s", server, f.cfg.Host)
		select {
		case f.reconnected <- struct{}{}:
		default:
		}
	case was:
		f.log.Event(events.MsgFleetDisconnected, sdjournal.PriWarning, fields,
			"Fleet: disconnected from %s; bans are kept in the outbox until the cluster is back", server)
	}
}

// Run connects to the cluster and publishes and applies bans until ctx is cancelled; it returns
// then, after saving the outbox. Losing the cluster is not an error: Run keeps trying.
func (f *Fleet) Run(ctx context.Context) error {
	nc, err := f.connect()
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	f.mu.Lock()
	f.nc = nc
	f.mu.Unlock()
	defer func() {
		nc.Close()
		f.save()
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); f.saveLoop(ctx) }()
	go func() { defer wg.Done(); f.session(ctx, js) }()
	wg.Wait()
	return nil
}

// saveLoop writes the outbox (and the record of applied peers' bans) at most every 100 ms while they change: a crash in between loses at
// most that much of it, and the reconciliation at the next connection finds that again.
func (f *Fleet) saveLoop(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.save()
		}
	}
}

// save writes the outbox and the record of applied peers' bans, if they changed.
func (f *Fleet) save() {
	for _, err := range []error{f.out.save(), f.saveApplied()} {
		if err != nil {
			f.log.Event("", sdjournal.PriErr, nil, "%v", err)
		}
	}
}

// session runs one connection's work, and starts it again after every reconnection: set up this
// host's bucket, reconcile it, publish, and watch the peers.
func (f *Fleet) session(ctx context.Context, js jetstream.JetStream) {
	select {
	case <-ctx.Done():
		return
	case <-f.reconnected:
	}
	for {
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.serve(sctx, js)
		}()
		var again bool
		select {
		case <-ctx.Done():
		case <-f.reconnected:
			again = true // start over: every bucket read whole, this host's reconciled again
		}
		cancel()
		<-done
		if !again {
			return
		}
	}
}

// serve is one connection's work; it returns when ctx is cancelled.
func (f *Fleet) serve(ctx context.Context, js jetstream.JetStream) {
	var kv jetstream.KeyValue
	for {
		var err error
		if kv, err = f.ownBucket(ctx, js); err == nil {
			break
		}
		f.log.Event("", sdjournal.PriWarning, nil, "Fleet: bucket %s: %v; trying again", Bucket(f.cfg.Host), err)
		if !sleep(ctx, 2*time.Second) {
			return
		}
	}
	if err := f.reconcileOwn(ctx, kv); err != nil && ctx.Err() == nil {
		f.log.Event("", sdjournal.PriWarning, nil, "Fleet: reconciling bucket %s: %v", Bucket(f.cfg.Host), err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); f.publish(ctx, js) }()
	go func() { defer wg.Done(); f.watchPeers(ctx, js) }()
	wg.Wait()
}

// markerTTL is how long the server keeps the marker of a key whose TTL ran out or that was purged:
// a peer that comes back later reads the bucket whole and lifts what is no longer there.
const markerTTL = 15 * time.Minute

// ownBucket creates this host's bucket if it is missing, or opens it.
func (f *Fleet) ownBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	name := Bucket(f.cfg.Host)
	if kv, err := js.KeyValue(ctx, name); err == nil {
		return kv, nil
	}
	return js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         name,
		Description:    "gaoler bans of " + f.cfg.Host,
		History:        1,
		Replicas:       f.cfg.Replicas,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: markerTTL,
	})
}

// reconcileOwn makes the outbox bring this host's bucket to the daemon's running bans: a ban the
// bucket lacks (made while the cluster was away and lost with the outbox, say) is put, a key with no
// running ban is purged.
func (f *Fleet) reconcileOwn(ctx context.Context, kv jetstream.KeyValue) error {
	now := f.now()
	want := map[string]events.Event{}
	for _, b := range f.d.Bans() {
		if b.Origin.Kind == events.OriginPeer || !f.cfg.Shares(b.Jail) || !b.Expires.After(now) {
			continue
		}
		k := Key(b.Jail, b.Prefix)
		if f.appliedFrom(k) != "" {
			continue // a peer's, whatever the daemon remembers of its origin
		}
		want[k] = b
	}
	have := map[string]bool{}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return err
	}
	for k := range lister.Keys() {
		have[k] = true
	}
	lister.Stop() // the channel is closed already: all keys are in
	f.mu.Lock()
	f.mine = have
	f.mu.Unlock()
	for k, b := range want {
		if have[k] {
			if e, err := kv.Get(ctx, k); err == nil && current(e, b) {
				continue
			}
		}
		f.out.put(op{Key: k, Value: valueOf(f.cfg.Host, b), Expires: b.Expires})
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			f.out.put(op{Key: k, Purge: true})
		}
	}
	return nil
}

// current says whether the bucket's entry e already says what the running ban b says.
func current(e jetstream.KeyValueEntry, b events.Event) bool {
	var v Value
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return false
	}
	return v.Count == b.Count && v.BannedAt.Equal(b.BannedAt)
}

// publish sends the outbox to this host's bucket, in order, one op at a time, until ctx is
// cancelled. A put carries the ban's remaining time as the key's TTL.
func (f *Fleet) publish(ctx context.Context, js jetstream.JetStream) {
	subject := "$KV." + Bucket(f.cfg.Host) + "."
	backlog := f.out.len()
	sent := 0
	for {
		p, ok := f.out.next()
		if !ok {
			if backlog > 0 && sent > 0 {
				f.log.Event(events.MsgFleetPublished, sdjournal.PriNotice, map[string]string{events.FieldCount: fmt.Sprint(sent)},
					"Fleet: published %d changes that waited in the outbox", sent)
			}
			backlog, sent = 0, 0
			select {
			case <-ctx.Done():
				return
			case <-f.out.wake:
			}
			continue
		}
		err := f.send(ctx, js, subject, p)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Event("", sdjournal.PriWarning, nil, "Fleet: publishing %s: %v; trying again", p.Key, err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		f.out.done(p)
		sent++
	}
}

// send publishes one op. A put is a message on the key's subject with a Nats-TTL header, which is
// what the KV API's Create with KeyTTL sends, without its "only if absent" condition: a ban extended
// or repeated replaces the key and its TTL. (The API's Put cannot set a TTL, and Update clears it.)
func (f *Fleet) send(ctx context.Context, js jetstream.JetStream, subject string, p op) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if p.Purge {
		f.mu.Lock()
		have := f.mine[p.Key]
		f.mu.Unlock()
		if !have {
			return nil // never published, or already gone
		}
		kv, err := js.KeyValue(ctx, Bucket(f.cfg.Host))
		if err == nil {
			err = kv.Purge(ctx, p.Key, jetstream.PurgeTTL(markerTTL))
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		delete(f.mine, p.Key)
		f.mu.Unlock()
		f.log.Event(events.MsgFleetPublished, sdjournal.PriDebug, map[string]string{events.FieldJail: p.Value.Jail},
			"Fleet: published the unban of %s", p.Key)
		return nil
	}
	ttl := p.Expires.Sub(f.now()).Round(time.Second)
	if ttl < time.Second {
		return nil // over already: nothing to tell
	}
	v := p.Value
	v.BanTime = int64(ttl / time.Second)
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject + p.Key, Data: data}, jetstream.WithMsgTTL(ttl)); err != nil {
		return err
	}
	f.mu.Lock()
	f.mine[p.Key] = true
	f.published++
	f.mu.Unlock()
	f.log.Event(events.MsgFleetPublished, sdjournal.PriDebug, map[string]string{
		events.FieldJail: v.Jail, events.FieldAddress: v.Address, events.FieldBanTime: fmt.Sprint(v.BanTime),
	}, "Fleet: published the ban of %s in jail %s for %s", v.Address, v.Jail, ttl)
	return nil
}

// sleep waits d or until ctx is cancelled, and says whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
