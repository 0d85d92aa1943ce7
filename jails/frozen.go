package jails

import (
	"io"
	"iter"
	"net/netip"
	"runtime"
	"slices"
)

// Frozen is the engine's state at one moment, taken by Freeze at a cost that does not grow with the
// number of bans or ban records: the bans, past bans and history are views of their ledgers (see
// ledger), merged and sorted when State or WriteJSON reads them, on the reader's goroutine. The
// daemon freezes under its lock once a second and writes the checkpoint on its saver goroutine. A
// Frozen may be read from any goroutine, by one at a time.
type Frozen struct {
	jails   []frozenJail
	history []frozenHistory
}

// frozenJail is one jail: its small parts copied (Bans and Past nil), its bans as views.
type frozenJail struct {
	js         JailState
	bans, past ledgerView[*Ban]
}

type frozenHistory struct {
	jail string
	recs ledgerView[record]
}

// Freeze returns the engine's state as Snapshot would, for reading later and elsewhere. Windows,
// trusts, connections, forgiveness and the ended bans are copied now (they are bounded by
// max_tracked, the tracker's caps and EndedKept); bans and history are not.
func (e *Engine) Freeze() *Frozen {
	f := &Frozen{jails: make([]frozenJail, 0, len(e.jails))}
	for _, j := range e.sortedJails() {
		js := JailState{
			Name:        j.name,
			Ended:       j.ended.list(),
			LastEntry:   j.lastAt,
			TotalFailed: j.failed,
			TotalBanned: j.banned,
			Trusted:     j.trustSnapshot(),
			Conns:       j.tracker.conns().snapshot(),
			Windows:     j.windows.snapshot(),
			Nets:        j.nets.snapshot(),
		}
		for p, at := range j.forgiven {
			js.Forgiven = append(js.Forgiven, ForgivenState{Prefix: p, At: at})
		}
		slices.SortFunc(js.Forgiven, func(a, b ForgivenState) int { return cmpPrefix(a.Prefix, b.Prefix) })
		f.jails = append(f.jails, frozenJail{js: js, bans: j.bans.view(), past: j.past.view()})
	}
	names := make([]string, 0, len(e.history))
	for name := range e.history {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names { // by jail, then prefix
		f.history = append(f.history, frozenHistory{jail: name, recs: e.history[name].view()})
	}
	return f
}

// Snapshot returns the engine's state (a deep copy, sorted, so equal engines give equal states).
func (e *Engine) Snapshot() State { return e.Freeze().State() }

// State returns the frozen state as a State (the Ban values are copies; their Entries are shared, as
// the engine's Ban values share them).
func (f *Frozen) State() State {
	s := State{Version: StateVersion}
	for _, fj := range f.jails {
		js := fj.js
		if items := fj.bans.items(); len(items) > 0 {
			js.Bans = fullBans(items)
		}
		if items := fj.past.items(); len(items) > 0 {
			js.Past = fullBans(items)
		}
		if len(js.Ended) > 0 {
			js.Ended = slices.Clone(js.Ended)
			for i := range js.Ended {
				js.Ended[i].Ban = js.Ended[i].Ban.full()
			}
		}
		s.Jails = append(s.Jails, js)
	}
	n := 0
	hist := make([][]ledgerItem[record], len(f.history))
	for i, h := range f.history {
		hist[i] = h.recs.items()
		n += len(hist[i])
	}
	if n > 0 {
		s.History = make([]HistoryRec, 0, n)
	}
	for i, h := range f.history {
		for _, it := range hist[i] {
			s.History = append(s.History, HistoryRec{Jail: h.jail, Prefix: it.p, Count: it.v.Count(), Last: it.v.Last()})
		}
	}
	return s
}

// WriteJSON writes the frozen state to w as State.WriteJSON writes the State it equals, without
// making that State: a copy of 100,000 bans is 18 MB for the garbage collector each second.
func (f *Frozen) WriteJSON(w io.Writer) error {
	o := jsonOut{b: make([]byte, 0, 2*jsonChunk), w: w}
	jails := make([]jailJSON, len(f.jails))
	for i := range f.jails {
		fj := &f.jails[i]
		jails[i] = jailJSON{js: &fj.js, bans: itemBans(fj.bans.items()), past: itemBans(fj.past.items())}
	}
	var hist []histJSON
	for _, h := range f.history {
		if items := h.recs.items(); len(items) > 0 {
			hist = append(hist, histJSON{jail: h.jail, recs: items})
		}
	}
	encodeState(&o, StateVersion, jails, hist)
	o.flush()
	return o.err
}

// BanList is the running bans of some jails at one moment, taken in constant time under the
// daemon's lock (a view of each jail's ledger), read later on any goroutine: the bus builds a
// ListBans reply of 100,000 bans from it without holding up the journal reader.
type BanList struct{ views []ledgerView[*Ban] }

// BanList returns the running bans of the jail ("" = all jails) as they are now; see Bans.
func (e *Engine) BanList(jailName string) BanList {
	var l BanList
	for _, j := range e.sortedJails() {
		if jailName == "" || j.name == jailName {
			l.views = append(l.views, j.bans.view())
		}
	}
	return l
}

// All yields the bans sorted by jail and prefix, as Bans returns them, letting other goroutines run
// every few hundred. The bans are the engine's records: the caller must not modify them.
func (l BanList) All() iter.Seq[*Ban] {
	return func(yield func(*Ban) bool) {
		n := 0
		for _, v := range l.views {
			for _, it := range v.items() {
				if !yield(it.v) {
					return
				}
				if n++; n%yieldEvery == 0 {
					runtime.Gosched() // see jsonOut.spill: the loop runs off the lock, beside the reader
				}
			}
		}
	}
}

// Len returns the number of bans.
func (l BanList) Len() int {
	n := 0
	for _, v := range l.views {
		n += len(v.items())
	}
	return n
}

// Page returns at most limit of the bans whose prefix sorts after after (from the first when after is
// the zero Prefix), in All's order, and whether more follow: a client reads 100,000 bans a page at a
// time, each page found by a binary search. For the list of one jail (BanList with its name); a
// limit below 1 is 1.
func (l BanList) Page(after netip.Prefix, limit int) (bans []*Ban, more bool) {
	limit = max(limit, 1)
	for _, v := range l.views {
		items := v.items()
		i := 0
		if after.IsValid() {
			i, _ = slices.BinarySearchFunc(items, after, func(it ledgerItem[*Ban], p netip.Prefix) int { return cmpPrefix(it.p, p) })
			if i < len(items) && cmpPrefix(items[i].p, after) == 0 {
				i++
			}
		}
		for ; i < len(items); i++ {
			if len(bans) == limit {
				return bans, true
			}
			bans = append(bans, items[i].v)
		}
	}
	return bans, false
}
