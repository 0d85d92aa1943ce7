package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	sdjournal "github.com/coreos/go-systemd/v22/journal"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
)

// peer is what this host knows of another host of the fleet. Guarded by Fleet.mu.
type peer struct {
	host     string
	watching bool
	applied  map[string]time.Time // keys applied from the peer -> when they end here
	refused  uint64
	limit    bucketLimiter
	lastLog  time.Time // of a refusal
	unlogged int       // refusals since
}

// watchPeers finds the peers' buckets (at once, then every rescan) and watches each until ctx is
// cancelled.
func (f *Fleet) watchPeers(ctx context.Context, js jetstream.JetStream) {
	var wg sync.WaitGroup
	defer wg.Wait()
	watching := map[string]bool{}
	ended := make(chan string, 16)
	own := Bucket(f.cfg.Host)
	for {
		names := js.KeyValueStoreNames(ctx)
		for name := range names.Name() {
			if !strings.HasPrefix(name, BucketPrefix) || name == own || watching[name] {
				continue
			}
			host := strings.TrimPrefix(name, BucketPrefix)
			watching[name] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.watch(ctx, js, host)
				f.mu.Lock()
				f.peerOf(host).watching = false
				f.mu.Unlock()
				select {
				case ended <- name: // watched again at the next rescan, from a full snapshot
				case <-ctx.Done():
				}
			}()
		}
		if err := names.Error(); err != nil && ctx.Err() == nil {
			f.log.Event("", sdjournal.PriWarning, nil, "Fleet: listing the buckets: %v", err)
		}
		t := time.NewTimer(f.rescan)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case name := <-ended:
				delete(watching, name)
			case <-t.C:
				waiting = false
			}
		}
	}
}

// peerOf returns host's peer record, making it. The caller holds f.mu.
func (f *Fleet) peerOf(host string) *peer {
	p := f.peers[host]
	if p == nil {
		p = &peer{host: host, applied: map[string]time.Time{}}
		p.limit = newBucketLimiter(float64(f.cfg.PeerRate), float64(10*f.cfg.PeerRate), f.now())
		f.peers[host] = p
	}
	return p
}

// watch applies host's bucket: first all of it (then the bans applied here from host that the
// bucket no longer has are lifted: they ended or were lifted while this host was not watching),
// then every change, until ctx is cancelled.
func (f *Fleet) watch(ctx context.Context, js jetstream.JetStream, host string) {
	kv, err := js.KeyValue(ctx, Bucket(host))
	if err != nil {
		if ctx.Err() == nil {
			f.log.Event("", sdjournal.PriWarning, nil, "Fleet: bucket %s: %v", Bucket(host), err)
		}
		return
	}
	// Everything up to the stream's last sequence now is in the snapshot the watch starts with.
	base, err := lastSequence(ctx, js, host)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Event("", sdjournal.PriWarning, nil, "Fleet: bucket %s: %v", Bucket(host), err)
		}
		return
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Event("", sdjournal.PriWarning, nil, "Fleet: watching %s: %v", Bucket(host), err)
		}
		return
	}
	defer w.Stop()
	f.mu.Lock()
	f.peerOf(host).watching = true
	f.mu.Unlock()
	snapshot := map[string]bool{} // keys seen before the end of the initial values; nil after
	// The watcher is an ordered consumer that the client library recreates when it misses its
	// heartbeats, which takes 10 s or more after the server holding it is lost. So the stream's last
	// sequence is checked every few seconds: one that the watcher has not delivered by the next
	// check means it is stuck, and watching starts over from a full snapshot.
	check := time.NewTicker(stuckCheck)
	defer check.Stop()
	var delivered, behind uint64
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			if snapshot != nil {
				continue // still reading the snapshot
			}
			last, err := lastSequence(ctx, js, host)
			if err != nil || last <= delivered {
				behind = 0
				continue
			}
			if behind != 0 && delivered < behind {
				f.log.Event("", sdjournal.PriNotice, nil, "Fleet: the watch of %s stopped at revision %d of %d; reading it again", Bucket(host), delivered, last)
				return
			}
			behind = last
			continue
		case e, ok = <-w.Updates():
			if !ok {
				return
			}
		}
		if e != nil {
			delivered = max(delivered, e.Revision())
		}
		if e == nil { // the initial values are all in
			delivered = max(delivered, base)
			f.liftMissing(host, snapshot)
			snapshot = nil
			continue
		}
		if snapshot != nil && e.Operation() == jetstream.KeyValuePut {
			snapshot[e.Key()] = true
		}
		f.entry(host, e)
	}
}

// stuckCheck is how often a watch is checked for being stuck.
const stuckCheck = 3 * time.Second

// lastSequence is the last sequence of host's bucket's stream.
func lastSequence(ctx context.Context, js jetstream.JetStream, host string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "KV_"+Bucket(host))
	if err != nil {
		return 0, err
	}
	return st.CachedInfo().State.LastSeq, nil
}

// liftMissing lifts the bans applied here from host whose keys the snapshot of its bucket lacks.
// Those are the daemon's bans whose origin is host, and those the fleet's own record says it applied
// from host (the daemon's LiftPeerBan checks the origin again).
func (f *Fleet) liftMissing(host string, snapshot map[string]bool) {
	gone := map[string]bool{}
	for _, b := range f.d.Bans() {
		if b.Origin.Kind == events.OriginPeer && b.Origin.Peer == host {
			gone[Key(b.Jail, b.Prefix)] = true
		}
	}
	f.mu.Lock()
	for k := range f.peerOf(host).applied {
		gone[k] = true
	}
	f.mu.Unlock()
	for key := range gone {
		if !snapshot[key] {
			f.lift(host, key, "gone from the peer's bucket")
		}
	}
}

// entry handles one entry of host's bucket: a put is applied, a purge or delete (an unban, or the
// server's marker of a TTL that ran out) lifted.
func (f *Fleet) entry(host string, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		f.lift(host, e.Key(), "lifted by the peer")
		return
	}
	jail, p, err := ParseKey(e.Key())
	var v Value
	if err == nil {
		v, err = decodeValue(e.Value(), host, jail, p)
	}
	if err != nil {
		f.refuse(host, e.Key(), err.Error())
		return
	}
	if !f.cfg.Shares(jail) {
		return // not shared here: neither applied nor refused
	}
	now := f.now()
	// The key's TTL runs from when the server stored it; its own clock gives the age, so a late
	// reader (a snapshot after a restart) applies only what is left.
	left := time.Duration(v.BanTime)*time.Second - now.Sub(e.Created())
	if left > time.Duration(v.BanTime)*time.Second {
		left = time.Duration(v.BanTime) * time.Second // clocks apart: never longer than the peer said
	}
	left = min(left, f.cfg.MaxBanTime).Round(time.Second)
	if left < time.Second {
		return
	}
	f.mu.Lock()
	pr := f.peerOf(host)
	allowed := pr.limit.take(now)
	f.mu.Unlock()
	if !allowed {
		f.refuse(host, e.Key(), fmt.Sprintf("more than %d bans a second from %s", f.cfg.PeerRate, host))
		return
	}
	err = f.d.ApplyPeerBan(PeerBan{Jail: jail, Prefix: p, For: left, Peer: host, Count: v.Count, Reason: v.Reason})
	switch {
	case errors.Is(err, jails.ErrIgnored):
		f.refuse(host, e.Key(), "the address is in this host's ignoreip or ignoreself")
		return
	case errors.Is(err, jails.ErrNoSuchJail):
		return // a jail this host does not run
	case err != nil:
		f.refuse(host, e.Key(), err.Error())
		return
	}
	f.mu.Lock()
	pr.applied[e.Key()] = now.Add(left)
	f.appliedTotal++
	f.appliedDirty = true
	f.mu.Unlock()
	f.log.Event(events.MsgFleetApplied, sdjournal.PriInfo, map[string]string{
		events.FieldJail: jail, events.FieldAddress: v.Address, events.FieldPeer: host,
		events.FieldBanTime: fmt.Sprint(int64(left / time.Second)), events.FieldBanCount: fmt.Sprint(v.Count),
	}, "Fleet: applied %s's ban of %s in jail %s for %s (%s)", host, v.Address, jail, left, v.Reason)
}

// lift lifts the ban of key applied from host, if there is one.
func (f *Fleet) lift(host, key, why string) {
	jail, p, err := ParseKey(key)
	if err != nil {
		return
	}
	f.mu.Lock()
	delete(f.peerOf(host).applied, key)
	f.appliedDirty = true
	f.mu.Unlock()
	if err := f.d.LiftPeerBan(jail, p, host); err != nil && !errors.Is(err, jails.ErrNotBanned) && !errors.Is(err, jails.ErrNoSuchJail) {
		f.log.Event("", sdjournal.PriWarning, nil, "Fleet: lifting %s's ban of %s (%s): %v", host, key, why, err)
	}
}

// refusalLogEvery is the most often a peer's refusals are logged one by one; in between they are
// counted and the next entry says how many were not logged.
const refusalLogEvery = 10 * time.Second

// refuse counts and logs a peer's ban that is not applied.
func (f *Fleet) refuse(host, key, why string) {
	now := f.now()
	f.mu.Lock()
	p := f.peerOf(host)
	p.refused++
	if now.Sub(p.lastLog) < refusalLogEvery {
		p.unlogged++
		f.mu.Unlock()
		return
	}
	more := p.unlogged
	p.lastLog, p.unlogged = now, 0
	f.mu.Unlock()
	jail, pfx, _ := ParseKey(key)
	fields := map[string]string{events.FieldPeer: host, events.FieldReason: why, events.FieldCount: fmt.Sprint(more)}
	if jail != "" {
		fields[events.FieldJail], fields[events.FieldAddress] = jail, events.PrefixString(pfx)
	}
	extra := ""
	if more > 0 {
		extra = fmt.Sprintf(" (and %d more refused since the last entry)", more)
	}
	f.log.Event(events.MsgFleetRefused, sdjournal.PriWarning, fields, "Fleet: refused %s's ban %q: %s%s", host, key, why, extra)
}

// bucketLimiter is a token bucket: rate tokens a second, at most burst saved up.
type bucketLimiter struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucketLimiter(rate, burst float64, now time.Time) bucketLimiter {
	return bucketLimiter{rate: rate, burst: burst, tokens: burst, last: now}
}

func (l *bucketLimiter) take(now time.Time) bool {
	if dt := now.Sub(l.last).Seconds(); dt > 0 {
		l.tokens = min(l.burst, l.tokens+dt*l.rate)
		l.last = now
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
