package jails

import (
	"net/netip"
	"slices"
	"time"

	"github.com/gaoler/gaoler/events"
)

// window is the recent failures of one address (or IPv6 prefix) in one jail: at most maxretry-1
// timestamps (a failure that reaches maxretry bans instead of being kept), in unix nanoseconds, and
// beside each the PID of its journal entry's sender. The windows of a jail form a list from the most
// to the least recently failed, so the stalest is evicted first when the jail reaches its cap.
//
// The timestamp and the PID find the entry in the journal again: the daemon reads a ban's messages and
// cursors back from there when it announces the ban (see Ban.Entries), so that a window keeps 12 bytes
// per failure instead of a copy of its message (50 to 100 bytes and an allocation) and its cursor
// (about 130 bytes, and as costly to read as the rest of the entry).
//
// The same type counts the distinct addresses of an IPv6 /64 that failed (Settings.IPv6SubnetLimit):
// there each timestamp is an address's first failure within findtime, and there are no PIDs.
type window struct {
	key        netip.Prefix
	times      []int64
	pids       []int32 // pids[i] is the sender of times[i], 0 when unknown; none in a /64's count
	prev, next *window
}

// windows is a jail's failure windows: a map for lookup and a list for eviction order. It also counts
// the windows that hold keep timestamps, the most a window holds: those are one failure from a ban.
type windows struct {
	m    prefixMap[*window]
	head window // sentinel: head.next is the most recent, head.prev the stalest
	keep int    // timestamps a full window holds; 0: no window is ever full
	full int    // windows holding keep timestamps
}

func newWindows(keep int) *windows {
	w := &windows{keep: keep}
	w.head.next, w.head.prev = &w.head, &w.head
	return w
}

func (ws *windows) len() int { return ws.m.len() }

// setKeep changes how many timestamps a window holds (maxretry changed) and recounts the full ones;
// windows holding more lose their oldest.
func (ws *windows) setKeep(keep int) {
	if keep == ws.keep {
		return
	}
	ws.keep, ws.full = keep, 0
	ws.each(func(w *window) {
		for keep > 0 && len(w.times) > keep {
			w.dropOldest()
		}
		if keep > 0 && len(w.times) == keep {
			ws.full++
		}
	})
}

// touch returns k's window, created if missing, moved to the front; created reports a new window.
func (ws *windows) touch(k netip.Prefix) (w *window, created bool) {
	w = ws.m.at(k)
	if w == nil {
		w = &window{key: k}
		ws.m.set(k, w)
		created = true
	} else {
		w.prev.next, w.next.prev = w.next, w.prev
	}
	w.prev, w.next = &ws.head, ws.head.next
	ws.head.next.prev = w
	ws.head.next = w
	return w, created
}

// pushBack adds a window at the stale end (Restore rebuilds the list from the stalest up with it).
func (ws *windows) pushBack(w *window) {
	for ws.keep > 0 && len(w.times) > ws.keep {
		w.dropOldest()
	}
	if ws.isFull(w) {
		ws.full++
	}
	ws.m.set(w.key, w)
	w.next, w.prev = &ws.head, ws.head.prev
	ws.head.prev.next = w
	ws.head.prev = w
}

func (ws *windows) remove(k netip.Prefix) {
	w := ws.m.at(k)
	if w == nil {
		return
	}
	if ws.isFull(w) {
		ws.full--
	}
	ws.m.del(k)
	w.prev.next, w.next.prev = w.next, w.prev
	w.prev, w.next = nil, nil
}

// trim evicts the stalest windows until at most max are left.
func (ws *windows) trim(max int) {
	for ws.len() > max {
		ws.remove(ws.stalest().key)
	}
}

func (ws *windows) isFull(w *window) bool { return ws.keep > 0 && len(w.times) == ws.keep }

// add records a failure at t from pid in w (one of ws's windows), as window.add does with ws's keep,
// and keeps the count of full windows.
func (ws *windows) add(w *window, t, findtime int64, pid int32) int {
	was := ws.isFull(w)
	n := w.add(t, findtime, ws.keep, pid)
	if is := ws.isFull(w); is != was {
		if is {
			ws.full++
		} else {
			ws.full--
		}
	}
	return n
}

// stalest returns the least recently failed window, or nil.
func (ws *windows) stalest() *window {
	if ws.head.prev == &ws.head {
		return nil
	}
	return ws.head.prev
}

// each calls fn from the stalest window to the most recent.
func (ws *windows) each(fn func(w *window)) {
	for w := ws.head.prev; w != &ws.head; {
		prev := w.prev
		fn(w)
		w = prev
	}
}

// add records a failure at t (unix nanoseconds) from pid (0: none kept) and returns how many failures
// lie within findtime of t, this one included. Older ones are dropped; at most keep are kept.
func (w *window) add(t, findtime int64, keep int, pid int32) int {
	cutoff := t - findtime
	if pid != 0 {
		w.fill()
	}
	n := 0
	for i, x := range w.times {
		if x >= cutoff {
			w.times[n] = x
			if len(w.pids) > 0 {
				w.pids[n] = w.pids[i]
			}
			n++
		}
	}
	w.times = w.times[:n]
	if len(w.pids) > 0 {
		w.pids = w.pids[:n]
	}
	count := n + 1
	if keep <= 0 {
		return count
	}
	if len(w.times) >= keep {
		w.dropOldest()
	}
	if w.times == nil {
		w.times = make([]int64, 0, min(keep, 8))
	}
	w.times = append(w.times, t)
	if len(w.pids) > 0 || pid != 0 {
		if w.pids == nil {
			w.pids = make([]int32, 0, min(keep, 8))
		}
		w.fill() // the times before t, if they came with none
		w.pids[len(w.pids)-1] = pid
	}
	return count
}

// fill gives every time a PID (0, unknown): a window restored from a state written before windows
// kept them has none.
func (w *window) fill() {
	for len(w.pids) < len(w.times) {
		w.pids = append(w.pids, 0)
	}
}

// dropOldest drops the earliest timestamp.
func (w *window) dropOldest() {
	oldest := 0
	for i, x := range w.times {
		if x < w.times[oldest] {
			oldest = i
		}
	}
	w.times = append(w.times[:oldest], w.times[oldest+1:]...)
	if len(w.pids) > oldest {
		w.pids = append(w.pids[:oldest], w.pids[oldest+1:]...)
	}
}

// within appends to buf the failures of w within findtime of t, as the journal entries behind a ban
// have them (time and PID), and returns it.
func (w *window) within(buf []events.Entry, t, findtime int64) []events.Entry {
	cutoff := t - findtime
	for i, x := range w.times {
		if x >= cutoff {
			e := events.Entry{Time: time.Unix(0, x)}
			if i < len(w.pids) {
				e.PID = int(w.pids[i])
			}
			buf = append(buf, e)
		}
	}
	return buf
}

func cmpEntryTime(a, b events.Entry) int { return a.Time.Compare(b.Time) }

// banEntries returns prior (the failures before last, see within) and then last as the journal
// entries behind a ban, oldest first, in prior's array: a buffer, of which Engine.ban keeps a copy.
func banEntries(prior []events.Entry, last events.Entry) []events.Entry {
	if !slices.IsSortedFunc(prior, cmpEntryTime) {
		slices.SortStableFunc(prior, cmpEntryTime)
	}
	return append(prior, last)
}

// newest returns the latest failure in the window.
func (w *window) newest() int64 {
	var m int64
	for i, x := range w.times {
		if i == 0 || x > m {
			m = x
		}
	}
	return m
}
