package daemon

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/journal"
)

// How the engine's decisions reach their listeners. The engine reports a ban or an unban while the
// daemon holds mu (eventSink); the daemon turns it into an events.Event and keeps it in pending
// until the firewall's Flush has put the change in the kernel. Then commit moves it to the outbox,
// and unlock publishes the outbox on the Hub after letting go of mu. A Flush that fails keeps the
// events pending: the next commit (the next batch, or the next tick, a second later at most) tries
// the kernel again and announces them once it has them.
//
// Restored bans are published with Origin{Kind: events.OriginRestored}, so that every subscriber can
// tell them from new ones: bans re-installed from the checkpoint at start, the running bans the
// firewall put back after its table was flushed (Heal), and bans re-derived from entries read again
// after a crash (preCrash). They were announced when they were new: the SPEC asks that a restoration
// send no Banned signal, write no ban entry and run no action, so the journal log and the bus signals
// skip them (the log has its one "firewall restored" entry), as actions and the fleet must; metrics
// counts them.

// queueSize is how many events wait for one of the daemon's own subscribers (the journal log, the
// bus signals) before the oldest is dropped.
const queueSize = 4096

// eventSink receives the engine's decisions, holding the daemon's mutex.
type eventSink struct{ d *Daemon }

func (s eventSink) Banned(b jails.Ban) {
	d := s.d
	ev := banEvent(b)
	if len(d.preCrash) > 0 {
		key := banKey{b.Jail, b.Prefix.String()}
		if d.preCrash[key] {
			// The kernel had it before this start: a ban re-derived from entries the checkpoint had
			// not covered, announced before the crash.
			delete(d.preCrash, key)
			ev.Origin = events.Origin{Kind: events.OriginRestored}
		}
	}
	d.pending = append(d.pending, ev)
}

// banEvent is b's announcement.
func banEvent(b jails.Ban) events.Event {
	return events.Event{
		Kind: events.Ban, Jail: b.Jail, Prefix: b.Prefix, BannedAt: b.BannedAt, Expires: b.Expires,
		Count: b.Count, Origin: b.Origin, BanOrigin: b.Origin, Rule: b.Rule, Entries: b.AllEntries(),
	}
}

// announceRestored puts the restoration of bans, already in the kernel, in the outbox.
func (d *Daemon) announceRestored(bans []jails.Ban) {
	for _, b := range bans {
		ev := banEvent(b)
		ev.Origin = events.Origin{Kind: events.OriginRestored}
		d.outbox = append(d.outbox, ev)
	}
}

func (s eventSink) Unbanned(b jails.Ban, reason string, by events.Origin) {
	s.d.pending = append(s.d.pending, events.Event{
		Kind: events.Unban, Jail: b.Jail, Prefix: b.Prefix, BannedAt: b.BannedAt, Expires: b.Expires,
		Count: b.Count, Origin: by, BanOrigin: b.Origin, Rule: b.Rule, Reason: reason, Entries: b.AllEntries(),
	})
}

func (s eventSink) Failed(jail string, addr netip.Addr, at time.Time, rule string) {
	d := s.d
	if !d.failureLog.allow(d.batchNow, at) {
		return // counted, not logged (a backlog, or a flood); handleBatch tells the bus once per batch
	}
	d.notes = append(d.notes, func() {
		a := addr.String()
		d.log.Event(events.MsgFailure, sdjournal.PriDebug, map[string]string{
			events.FieldJail: jail, events.FieldAddress: a, events.FieldRule: rule,
		}, "Failure from %s in jail %s (rule: %s)", a, jail, rule)
	})
}

// The journal lookups that complete a ban's entries are rationed, as the failures' debug entries are:
// at most lookupRate a second with a burst of lookupBurst, so that a flood of bans never makes the
// journal reader wait on them (0.4 ms a lookup on this project's 2 GB journal, 2 ms when its pages are
// cold: 50 a second cost at most a tenth of a core). Bans beyond the ration are announced with the
// entries they have.
// Besides, one commit spends at most lookupTime on them: on a journal of many files a lookup can take
// much longer than usual (cold pages, a rotation to take in).
const (
	lookupRate  = 50
	lookupBurst = 25
	lookupTime  = 5 * time.Millisecond
)

// completeEntries gives the entries behind the new bans in pending their messages and cursors, read
// back from the journal: the engine's failure windows keep only each failure's time and PID, and the
// reader gives a cursor to the last entry of a batch only (see jails.Ban.Entries). It runs after the
// kernel has the bans, so that a lookup never delays one, and gives the completed entries to the
// engine's records too (Engine.CompleteEntries; the event's entries are completed in a copy of
// their own, since the engine's are never modified). Only live bans are completed: a ban a backlog
// made (its last entry older than backlogAge, as when catching up after a restart) keeps the entries
// the batch gave. What it does not find stays "", not known.
func (d *Daemon) completeEntries() {
	now := d.now()
	var began time.Time // real time, not d.now: what the lookups cost
	for i := range d.pending {
		ev := &d.pending[i]
		if ev.Kind != events.Ban || ev.Origin.Kind == events.OriginRestored || complete(ev.Entries) ||
			now.Sub(ev.Entries[len(ev.Entries)-1].Time) > backlogAge {
			continue
		}
		if !began.IsZero() && time.Since(began) > lookupTime || !d.lookups.take(now, min(len(ev.Entries), lookupBurst)) {
			return
		}
		if began.IsZero() {
			began = time.Now()
		}
		if d.opts.OpenJournal != nil {
			return // a test's journal: nothing to look up
		}
		if d.finder == nil && d.finderErr == nil {
			d.finder, d.finderErr = journal.OpenFinder(d.cfg.Journal.Directory)
			if d.finderErr != nil {
				d.log.Warnf("%v; bans are announced without the messages and cursors of their entries", d.finderErr)
			}
		}
		if d.finder == nil {
			return
		}
		ev.Entries = slices.Clone(ev.Entries)
		if _, err := d.finder.Complete(ev.Entries); err != nil {
			d.log.Warnf("%v", err)
		}
		d.engine.CompleteEntries(ev.Jail, ev.Prefix, ev.BannedAt, ev.Entries)
	}
}

// ration is a token bucket: rate tokens a second, at most burst saved.
type ration struct {
	tokens float64
	last   time.Time
}

// take spends n tokens, if there are as many.
func (r *ration) take(now time.Time, n int) bool {
	if !r.last.IsZero() {
		r.tokens += now.Sub(r.last).Seconds() * lookupRate
	} else {
		r.tokens = lookupBurst
	}
	r.tokens = min(r.tokens, lookupBurst)
	r.last = now
	if r.tokens < float64(n) {
		return false
	}
	r.tokens -= float64(n)
	return true
}

// complete reports whether every entry has its message and cursor.
func complete(entries []events.Entry) bool {
	for _, e := range entries {
		if e.Message == "" || e.Cursor == "" {
			return false
		}
	}
	return true
}

// commit sends the engine's queued firewall changes to the kernel in one transaction; when the
// kernel has them, their events go to the outbox, which unlock publishes. It returns Flush's error,
// already logged; the events stay pending and the next commit tries again.
func (d *Daemon) commit() error {
	if err := d.fw.Flush(); err != nil {
		if !d.flushFailed {
			d.log.Errorf("firewall: %v; trying again within a second, announcing nothing until then", err)
		}
		d.flushFailed = true
		return err
	}
	if d.flushFailed {
		d.log.Event("", sdjournal.PriNotice, nil, "firewall: changes committed after a failure")
		d.flushFailed = false
	}
	d.completeEntries()
	d.outbox = append(d.outbox, d.pending...)
	clear(d.pending)
	d.pending = d.pending[:0]
	return nil
}

// unlock lets go of mu, then writes the notes (journal entries of failures and trusts) and
// publishes the outbox. pubMu is taken before mu is let go, so that what two goroutines announce one
// after the other (the reader's batches, the main loop's timers and bus requests) reaches the Hub in
// that order.
func (d *Daemon) unlock() {
	out, notes := d.outbox, d.notes
	if len(out) == 0 && len(notes) == 0 {
		d.mu.Unlock()
		return
	}
	d.outbox, d.notes = nil, nil
	d.pubMu.Lock()
	d.mu.Unlock()
	for _, note := range notes {
		note()
	}
	for _, ev := range out {
		d.hub.Publish(ev)
	}
	d.pubMu.Unlock()
}

// logEvents is the subscriber that writes each ban and unban to the journal; a restoration is not
// a new ban, and has no entry of its own.
func logEvents(l *Logger) func(events.Event) {
	return func(ev events.Event) {
		if ev.Origin.Kind == events.OriginRestored {
			return
		}
		addr := ev.Address()
		fields := originFields(ev)
		fields[events.FieldJail], fields[events.FieldAddress] = ev.Jail, addr
		fields[events.FieldBanCount] = strconv.Itoa(ev.Count)
		switch ev.Kind {
		case events.Ban:
			bantime := ev.Expires.Sub(ev.BannedAt).Round(time.Second)
			fields[events.FieldBanTime] = strconv.FormatInt(int64(bantime/time.Second), 10)
			fields[events.FieldExpires] = strconv.FormatInt(ev.Expires.UnixMicro(), 10)
			l.Event(events.MsgBan, sdjournal.PriNotice, fields, "Banned %s in jail %s for %s (ban #%d, until %s)",
				addr, ev.Jail, bantime, ev.Count, ev.Expires.Local().Format("2006-01-02 15:04:05"))
		case events.Unban:
			fields[events.FieldReason] = ev.Reason
			l.Event(events.MsgUnban, sdjournal.PriNotice, fields, "Unbanned %s in jail %s (%s)", addr, ev.Jail, ev.Reason)
		}
	}
}

// originFields are the journal fields that say who made the ban of ev (GAOLER_ORIGIN, with
// GAOLER_UID for a manual ban, GAOLER_PEER for a peer's, GAOLER_RULE for the filter's) and, for a
// manual unban, who lifted it (GAOLER_BY_UID), as the bus's BannedEx and UnbannedEx carry them.
func originFields(ev events.Event) map[string]string {
	o := ev.Maker()
	f := map[string]string{events.FieldOrigin: o.Kind.String()}
	switch o.Kind {
	case events.OriginManual:
		f[events.FieldUID] = strconv.FormatUint(uint64(o.UID), 10)
	case events.OriginPeer:
		f[events.FieldPeer] = o.Peer
	case events.OriginFilter:
		if ev.Rule != "" {
			f[events.FieldRule] = ev.Rule
		}
	}
	if ev.Kind == events.Unban && ev.Origin.Kind == events.OriginManual {
		f[events.FieldByUID] = strconv.FormatUint(uint64(ev.Origin.UID), 10)
	}
	return f
}

// signalEvents is the subscriber that emits the bus's Banned and Unbanned signals, and BannedEx and
// UnbannedEx with the origin beside them; a restoration sends none.
func signalEvents(s *bus.Server) func(events.Event) {
	return func(ev events.Event) {
		if ev.Origin.Kind == events.OriginRestored {
			return
		}
		s.Announce(ev)
		s.CountersChanged(ev.Jail)
	}
}
