package firewall

import (
	"container/heap"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"
)

// replaceTolerance is how far a new expiry may differ from the installed one before Flush replaces
// the element: re-banning with the same deadline, give or take clock noise, changes nothing.
const replaceTolerance = time.Second

// mirror is gaoler's copy of one jail's two sets. want is what the kernel should hold (the bans as
// the engine last asked for them); have is what it held after the last successful Flush. The
// difference between them, limited to the keys in dirty, is what the next Flush sends.
//
// Expiry times are absolute, as stamps (unix nanoseconds, 0 for an element without timeout): a
// mirror holds every ban twice, and 200,000 bans took 45 MB of maps with time.Time values.
type mirror struct {
	want  map[netip.Prefix]stamp
	have  map[netip.Prefix]stamp
	dirty map[netip.Prefix]struct{}
	// bits counts the wanted prefixes of each length, per family, so that the overlap checks look
	// only at the lengths in use: an address costs one map lookup per distinct length, not a scan.
	bits4 [33]int
	bits6 [129]int
	// expiries holds every expiry set, soonest first, so that prune finds what the kernel has
	// dropped without walking the whole mirror (1.5 ms at 100,000 bans). An entry whose prefix was
	// extended or unbanned since is stale and skipped when it comes up.
	expiries expiryHeap
	// shadow holds the prefix bans inside a wanted prefix that outlast it. An interval set refuses
	// overlapping elements, so they wait here, out of the kernel, and are installed as soon as the
	// prefix covering them is gone (unbanned, or expired: see unshadow).
	shadow map[netip.Prefix]stamp
}

// expiry is one entry of the mirror's expiry heap.
type expiry struct {
	at     int64 // unix nanoseconds
	prefix netip.Prefix
}

type expiryHeap []expiry

// stamp is an absolute expiry in unix nanoseconds; 0 means none.
type stamp int64

func stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(t.UnixNano())
}

func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(s))
}

// live reports whether an element expiring at s is still in force at now.
func (s stamp) live(now time.Time) bool { return s == 0 || int64(s) > now.UnixNano() }

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newMirror() *mirror {
	return &mirror{
		want:   make(map[netip.Prefix]stamp),
		have:   make(map[netip.Prefix]stamp),
		dirty:  make(map[netip.Prefix]struct{}),
		shadow: make(map[netip.Prefix]stamp),
	}
}

// isHost reports whether p is a single address, an element of the hash sets: it never overlaps the
// intervals of the prefix sets.
func isHost(p netip.Prefix) bool { return p.Bits() == p.Addr().BitLen() }

// outlasts reports whether an element expiring at a is in force at least as long as one expiring at b.
func outlasts(a, b stamp) bool { return a == 0 || (b != 0 && a >= b) }

// normalize returns p masked, with an IPv4-mapped IPv6 prefix turned into its IPv4 prefix.
func normalize(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a := p.Addr().WithZone("")
	if a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	} else {
		p = netip.PrefixFrom(a, p.Bits())
	}
	return p.Masked(), true
}

func live(expires, now time.Time) bool { return expires.IsZero() || expires.After(now) }

func (m *mirror) count(p netip.Prefix, d int) {
	if p.Addr().Is4() {
		m.bits4[p.Bits()] += d
	} else {
		m.bits6[p.Bits()] += d
	}
}

func (m *mirror) counts(p netip.Prefix) []int {
	if p.Addr().Is4() {
		return m.bits4[:]
	}
	return m.bits6[:]
}

func (m *mirror) set(p netip.Prefix, expires time.Time) {
	if _, ok := m.want[p]; !ok {
		m.count(p, 1)
	}
	exp := stampOf(expires)
	m.want[p] = exp
	m.dirty[p] = struct{}{}
	if exp != 0 {
		heap.Push(&m.expiries, expiry{at: int64(exp), prefix: p})
	}
}

func (m *mirror) remove(p netip.Prefix) {
	if _, ok := m.want[p]; ok {
		m.count(p, -1)
		delete(m.want, p)
	}
	m.dirty[p] = struct{}{}
}

// covering returns a live wanted prefix strictly shorter than p that contains it; expired ones on
// the way are removed.
func (m *mirror) covering(p netip.Prefix, now time.Time) (netip.Prefix, bool) {
	counts := m.counts(p)
	for bits := 0; bits < p.Bits(); bits++ {
		if counts[bits] == 0 {
			continue
		}
		q := netip.PrefixFrom(p.Addr(), bits).Masked()
		exp, ok := m.want[q]
		if !ok {
			continue
		}
		if exp.live(now) {
			return q, true
		}
		// An expired prefix the kernel may not have dropped yet would overlap: delete it first.
		m.remove(q)
	}
	return netip.Prefix{}, false
}

// ban records a ban of the normalized prefix p until expires and reports whether it changed anything.
//
// Every ban the engine holds stays in force in the kernel for as long as it lasts, also when a wider
// ban overlaps it for a while. An address always has its own element in the hash set, inside a banned
// prefix or not. Prefixes share an interval set, which refuses overlaps: a prefix inside a wanted
// prefix that lasts at least as long is already in force and changes nothing, one that outlasts it is
// shadowed until the wider one is gone; a prefix ban removes the narrower prefixes inside it, and
// shadows those of them that outlast it.
func (m *mirror) ban(p netip.Prefix, expires, now time.Time) bool {
	if isHost(p) {
		m.set(p, expires)
		return true
	}
	exp := stampOf(expires)
	delete(m.shadow, p)
	if c, ok := m.covering(p, now); ok {
		if outlasts(m.want[c], exp) {
			return false
		}
		m.shadow[p] = exp
		return true
	}
	if m.holdsNarrower(p) {
		for q, qexp := range m.want {
			if !isHost(q) && q.Bits() > p.Bits() && q.Addr().Is4() == p.Addr().Is4() && p.Contains(q.Addr()) {
				m.remove(q)
				if qexp.live(now) && !outlasts(exp, qexp) {
					m.shadow[q] = qexp
				}
			}
		}
	}
	m.set(p, expires)
	return true
}

// holdsNarrower reports whether some wanted prefix of p's family is narrower than p and not an
// address: only then can one lie inside p, and ban must look for it.
func (m *mirror) holdsNarrower(p netip.Prefix) bool {
	counts := m.counts(p)
	return slices.ContainsFunc(counts[p.Bits()+1:len(counts)-1], func(n int) bool { return n > 0 })
}

// unban removes the normalized prefix p; it reports false if p is not (or no longer) banned. The
// shadowed prefixes that p covered are installed in the same transaction.
func (m *mirror) unban(p netip.Prefix, now time.Time) bool {
	if exp, ok := m.shadow[p]; ok {
		delete(m.shadow, p)
		return exp.live(now)
	}
	exp, ok := m.want[p]
	if !ok {
		return false
	}
	m.remove(p)
	m.unshadow(now)
	return exp.live(now)
}

// unshadow installs the shadowed prefixes that no live wanted prefix covers any more, widest first,
// and forgets those that have expired. It runs at every unban and before every transaction (pending),
// so a shadowed ban enters the kernel in the flush that follows its cover's expiry: the daemon
// flushes when it expires its bans.
func (m *mirror) unshadow(now time.Time) {
	if len(m.shadow) == 0 {
		return
	}
	free := make([]netip.Prefix, 0, len(m.shadow))
	for q, exp := range m.shadow {
		if !exp.live(now) {
			delete(m.shadow, q)
			continue
		}
		if _, covered := m.covering(q, now); !covered {
			free = append(free, q)
		}
	}
	sort.Slice(free, func(i, j int) bool {
		if free[i].Bits() != free[j].Bits() {
			return free[i].Bits() < free[j].Bits()
		}
		return prefixLess(free[i], free[j])
	})
	for _, q := range free {
		if exp, ok := m.shadow[q]; ok { // a wider one installed before it may have covered it again
			delete(m.shadow, q)
			m.ban(q, exp.time(), now)
		}
	}
}

// change is one element to send: a deletion, or an addition with its timeout.
type change struct {
	prefix  netip.Prefix
	timeout time.Duration // additions only; 0 = no timeout
}

// pending computes the deletions and additions that bring the kernel from have to want, sorted for
// stable transactions. Wanted elements that expire before they could be sent are dropped.
func (m *mirror) pending(now time.Time) (dels, adds []change) {
	m.unshadow(now)
	for p := range m.dirty {
		wexp, wanted := m.want[p]
		hexp, had := m.have[p]
		if wanted && !wexp.live(now) {
			m.remove(p)
			wanted = false
		}
		switch {
		case wanted && had && sameExpiry(wexp, hexp):
			continue
		case had:
			dels = append(dels, change{prefix: p})
		}
		if wanted {
			adds = append(adds, change{prefix: p, timeout: kernelTimeout(wexp.time(), now)})
		}
	}
	sortChanges(dels)
	sortChanges(adds)
	return dels, adds
}

func sameExpiry(a, b stamp) bool {
	if a == 0 || b == 0 {
		return a == b
	}
	d := time.Duration(a - b)
	return d > -replaceTolerance && d < replaceTolerance
}

// committed records that the kernel now holds want for every dirty key.
func (m *mirror) committed() {
	for p := range m.dirty {
		if exp, ok := m.want[p]; ok {
			m.have[p] = exp
		} else {
			delete(m.have, p)
		}
	}
	clear(m.dirty)
}

// installed replaces have with what the kernel holds and marks every key dirty, so that the next
// pending call computes the full difference; used after a failed transaction or a rebuild.
func (m *mirror) installed(elems []Element) {
	clear(m.have)
	for _, e := range elems {
		m.have[e.Prefix] = stampOf(e.Expires)
		m.dirty[e.Prefix] = struct{}{}
	}
	for p := range m.want {
		m.dirty[p] = struct{}{}
	}
}

// adopt makes the kernel's elements the wanted state, as on a first start that finds bans left by a
// previous gaolerd; nothing is dirty afterwards.
func (m *mirror) adopt(elems []Element, now time.Time) {
	for _, e := range elems {
		if live(e.Expires, now) {
			m.set(e.Prefix, e.Expires)
			m.have[e.Prefix] = stampOf(e.Expires)
		}
	}
	clear(m.dirty)
}

// prune forgets elements that expired more than grace ago: the kernel has dropped them by itself. It
// looks at most at limit expiries (stale ones included; all if limit < 0), so its cost is bounded
// and that of the expired entries, not of the mirror.
func (m *mirror) prune(now time.Time, grace time.Duration, limit int) {
	cutoff := now.Add(-grace).UnixNano()
	for n := 0; len(m.expiries) > 0 && m.expiries[0].at < cutoff && (limit < 0 || n < limit); n++ {
		e := heap.Pop(&m.expiries).(expiry)
		exp, ok := m.want[e.prefix]
		if !ok || exp == 0 || int64(exp) != e.at {
			continue // unbanned or extended since: a later entry stands for it
		}
		m.count(e.prefix, -1)
		delete(m.want, e.prefix)
		delete(m.have, e.prefix)
		delete(m.dirty, e.prefix)
	}
}

// elements returns the live wanted elements, sorted.
func (m *mirror) elements(now time.Time) []Element {
	var out []Element
	for p, exp := range m.want {
		if exp.live(now) {
			out = append(out, Element{Prefix: p, Expires: exp.time()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return prefixLess(out[i].Prefix, out[j].Prefix) })
	return out
}

func sortChanges(cs []change) {
	sort.Slice(cs, func(i, j int) bool { return prefixLess(cs[i].prefix, cs[j].prefix) })
}

func prefixLess(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

// kernelTimeout is the element timeout for an expiry: the time left, rounded up to whole seconds (so
// that a ban of 10m shows as "timeout 10m" in nft, not 9m59s996ms, and never ends early), or 0 for
// an element without expiry.
func kernelTimeout(expires, now time.Time) time.Duration {
	if expires.IsZero() {
		return 0
	}
	left := expires.Sub(now)
	if left < time.Second {
		return max(left, time.Millisecond)
	}
	return ((left + time.Second - 1) / time.Second) * time.Second
}

// banIn records a ban of p for timeout in the mirror of jail, for either backend (named in errors):
// the checks and the overlap rules are the mirror's, the kernel side is the caller's.
func banIn(mirrors map[string]*mirror, backend, jail string, p netip.Prefix, timeout time.Duration, now time.Time) (*mirror, error) {
	q, ok := normalize(p)
	if !ok {
		return nil, fmt.Errorf("%s: %w: %v", backend, ErrInvalidPrefix, p)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("%s: ban of %v in jail %q: timeout %v is not positive", backend, p, jail, timeout)
	}
	m, ok := mirrors[jail]
	if !ok {
		return nil, fmt.Errorf("%s: jail %q: %w", backend, jail, ErrNoSuchJail)
	}
	m.ban(q, now.Add(timeout), now)
	return m, nil
}

// unbanIn records the removal of p from the mirror of jail; ErrNotBanned if p has no live element
// there. The mirror is returned also then, for a backend that settles it at once.
func unbanIn(mirrors map[string]*mirror, backend, jail string, p netip.Prefix, now time.Time) (*mirror, error) {
	q, ok := normalize(p)
	if !ok {
		return nil, fmt.Errorf("%s: %w: %v", backend, ErrInvalidPrefix, p)
	}
	m, ok := mirrors[jail]
	if !ok {
		return nil, fmt.Errorf("%s: jail %q: %w", backend, jail, ErrNoSuchJail)
	}
	if !m.unban(q, now) {
		return m, fmt.Errorf("%s: %v in jail %q: %w", backend, p, jail, ErrNotBanned)
	}
	return m, nil
}
