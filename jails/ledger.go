package jails

import (
	"net/netip"
	"slices"
	"sync/atomic"
)

// ledger is a prefix-keyed table (a jail's bans, its past bans, its ban history) as readers off the
// daemon's lock see it: a base sorted by prefix, immutable once made, and the log of the changes made
// since, append-only. The engine's own lookups stay in its prefixMaps; the ledger shadows them so
// that a checkpoint or a ListBans of 100,000 bans costs the engine two slice headers (see view)
// instead of a sorted deep copy under the lock (53 ms with 100,000 bans).
//
// A reader merges the base with the log on its own goroutine and offers the result back (merged);
// the engine installs it at its next view, keeping only the changes made after it. Values must not
// change once set: bans are replaced, never modified in place.
type ledger[V any] struct {
	base *ledgerBase[V]
	log  []ledgerChange[V] // never modified once appended: readers hold prefixes of it
	done atomic.Pointer[ledgerMerge[V]]
}

// ledgerBase is a sorted, immutable table.
type ledgerBase[V any] struct{ items []ledgerItem[V] }

type ledgerItem[V any] struct {
	p netip.Prefix
	v V
}

// ledgerChange is one set (gone false) or delete (gone true) of a prefix.
type ledgerChange[V any] struct {
	ledgerItem[V]
	gone bool
}

// ledgerMerge is a reader's merge of from with the log's first upto changes: to.
type ledgerMerge[V any] struct {
	from, to *ledgerBase[V]
	upto     int
}

// ledgerCompactAt is the log length past which the engine merges the log itself (when it is longer
// than the base too), so that a ledger nobody reads stays bounded: amortized, O(log n) per change.
const ledgerCompactAt = 4096

func newLedger[V any]() *ledger[V] { return &ledger[V]{base: &ledgerBase[V]{}} }

func (l *ledger[V]) set(p netip.Prefix, v V) { l.add(ledgerChange[V]{ledgerItem: ledgerItem[V]{p, v}}) }

func (l *ledger[V]) del(p netip.Prefix) {
	l.add(ledgerChange[V]{ledgerItem: ledgerItem[V]{p: p}, gone: true})
}

func (l *ledger[V]) add(c ledgerChange[V]) {
	l.log = append(l.log, c)
	if len(l.log) > ledgerCompactAt && len(l.log) > len(l.base.items) {
		l.compact()
	}
}

// compact merges the whole log into a new base, on the caller's goroutine.
func (l *ledger[V]) compact() {
	l.install()
	if len(l.log) == 0 {
		return
	}
	l.base = &ledgerBase[V]{items: merge(l.base.items, l.log)}
	l.log = nil
}

// install takes a reader's merge if it was made from the current base.
func (l *ledger[V]) install() {
	m := l.done.Swap(nil)
	if m == nil || m.from != l.base || m.upto > len(l.log) {
		return
	}
	l.base = m.to
	l.log = slices.Clone(l.log[m.upto:]) // a fresh array: readers keep the old one
}

// view returns the table as it is now, for a reader on any goroutine; it costs the caller no more
// than installing a merge a reader offered (copying the changes made since it).
func (l *ledger[V]) view() ledgerView[V] {
	l.install()
	return ledgerView[V]{l: l, base: l.base, log: l.log[:len(l.log):len(l.log)]}
}

// ledgerView is a ledger at one moment. Its methods may run on any goroutine.
type ledgerView[V any] struct {
	l    *ledger[V]
	base *ledgerBase[V]
	log  []ledgerChange[V]
}

// items returns the table sorted by prefix (cmpPrefix), and offers the merge to the ledger. The
// slice is shared: the caller must not modify it.
func (v ledgerView[V]) items() []ledgerItem[V] {
	if v.base == nil {
		return nil
	}
	if len(v.log) == 0 {
		return v.base.items
	}
	m := &ledgerMerge[V]{from: v.base, upto: len(v.log), to: &ledgerBase[V]{items: merge(v.base.items, v.log)}}
	for {
		old := v.l.done.Load()
		if old != nil && old.from == m.from && old.upto >= m.upto {
			break // as good or better on offer already
		}
		if v.l.done.CompareAndSwap(old, m) {
			break
		}
	}
	return m.to.items
}

// merge returns base (sorted) with the changes applied in order, sorted.
func merge[V any](base []ledgerItem[V], log []ledgerChange[V]) []ledgerItem[V] {
	ch := slices.Clone(log)
	slices.SortStableFunc(ch, func(a, b ledgerChange[V]) int { return cmpPrefix(a.p, b.p) })
	out := make([]ledgerItem[V], 0, len(base)+len(ch))
	i := 0
	for k := 0; k < len(ch); {
		last := ch[k] // the last change of this prefix wins
		for k++; k < len(ch) && cmpPrefix(ch[k].p, last.p) == 0; k++ {
			last = ch[k]
		}
		for i < len(base) && cmpPrefix(base[i].p, last.p) < 0 {
			out = append(out, base[i])
			i++
		}
		if i < len(base) && cmpPrefix(base[i].p, last.p) == 0 {
			i++
		}
		if !last.gone {
			out = append(out, last.ledgerItem)
		}
	}
	return append(out, base[i:]...)
}

// ledgered is a prefixMap whose changes a ledger records, for readers off the lock. The zero value is
// an empty table.
type ledgered[V any] struct {
	prefixMap[V]
	l *ledger[V]
}

func (t *ledgered[V]) set(p netip.Prefix, v V) {
	t.prefixMap.set(p, v)
	if t.l == nil {
		t.l = newLedger[V]()
	}
	t.l.set(p, v)
}

func (t *ledgered[V]) del(p netip.Prefix) {
	if _, ok := t.get(p); !ok {
		return
	}
	t.prefixMap.del(p)
	t.l.del(p)
}

// view returns the table as it is now (see ledger.view).
func (t *ledgered[V]) view() ledgerView[V] {
	if t.l == nil {
		return ledgerView[V]{}
	}
	return t.l.view()
}

// compact merges the ledger's log into its base now (after a Restore, say).
func (t *ledgered[V]) compact() {
	if t.l != nil {
		t.l.compact()
	}
}
