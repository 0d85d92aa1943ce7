package jails

import "net/netip"

// window is the recent failures of one address (or IPv6 prefix) in one jail: at most maxretry-1
// timestamps (a failure that reaches maxretry bans instead of being kept), in unix nanoseconds. The
// windows of a jail form a list from the most to the least recently failed, so the stalest is evicted
// first when the jail reaches its cap.
//
// The same type counts the distinct addresses of an IPv6 /64 that failed (Settings.IPv6SubnetLimit):
// there each timestamp is an address's first failure within findtime.
type window struct {
	key        netip.Prefix
	times      []int64
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

// add records a failure at t in w (one of ws's windows), as window.add does with ws's keep, and keeps
// the count of full windows.
func (ws *windows) add(w *window, t, findtime int64) int {
	was := ws.isFull(w)
	n := w.add(t, findtime, ws.keep)
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

// add records a failure at t (unix nanoseconds) and returns how many failures lie within findtime
// of t, this one included. Older ones are dropped; at most keep are kept.
func (w *window) add(t, findtime int64, keep int) int {
	cutoff := t - findtime
	n := 0
	for _, x := range w.times {
		if x >= cutoff {
			w.times[n] = x
			n++
		}
	}
	w.times = w.times[:n]
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
	return count
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
