package firewall

import (
	"net/netip"
	"sort"
	"time"

	"github.com/google/nftables"
)

// An interval set stores a prefix as two elements: its first address, carrying the timeout, and the
// address just past its end flagged NFT_SET_ELEM_INTERVAL_END. A prefix that ends at the last address
// of its family has no end element: the interval is open to the top, as nft itself sends it.

// intervalElements appends the one or two set elements of p.
func intervalElements(dst []nftables.SetElement, p netip.Prefix, timeout time.Duration) []nftables.SetElement {
	dst = append(dst, nftables.SetElement{Key: p.Addr().AsSlice(), Timeout: timeout})
	if end, ok := pastEnd(p); ok {
		dst = append(dst, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
	}
	return dst
}

// elementCount is the number of set elements that intervalElements makes for p.
func elementCount(p netip.Prefix) int {
	if _, ok := pastEnd(p); ok {
		return 2
	}
	return 1
}

// pastEnd returns the address after the last one of p, or false if p reaches the family's top.
func pastEnd(p netip.Prefix) (netip.Addr, bool) {
	last := lastAddr(p)
	next := last.Next()
	return next, next.IsValid()
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// fromKernel turns the elements of an interval set, as the kernel dumps them (in no useful order), into
// prefixes with their expiry. A range that is not a single prefix (added by hand) becomes the prefixes
// that cover it exactly.
func fromKernel(elems []nftables.SetElement, v6 bool, now time.Time) []Element {
	type bound struct {
		addr    netip.Addr
		end     bool
		expires time.Time
	}
	bounds := make([]bound, 0, len(elems))
	for _, e := range elems {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok || a.Is6() != v6 {
			continue
		}
		b := bound{addr: a, end: e.IntervalEnd}
		if e.Timeout != 0 {
			b.expires = now.Add(e.Expires)
		}
		bounds = append(bounds, b)
	}
	// At an equal address an end sorts before a start: [a,b) and [b,c) touch at b.
	sort.Slice(bounds, func(i, j int) bool {
		if c := bounds[i].addr.Compare(bounds[j].addr); c != 0 {
			return c < 0
		}
		return bounds[i].end && !bounds[j].end
	})
	var out []Element
	for i := 0; i < len(bounds); i++ {
		s := bounds[i]
		if s.end {
			continue // nft's leading "0.0.0.0 end" marker, or an end without start
		}
		var last netip.Addr
		if i+1 < len(bounds) && bounds[i+1].end {
			last = bounds[i+1].addr.Prev()
			i++
		} else if v6 {
			last = netip.AddrFrom16([16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		} else {
			last = netip.AddrFrom4([4]byte{0xff, 0xff, 0xff, 0xff})
		}
		for _, p := range rangePrefixes(s.addr, last) {
			out = append(out, Element{Prefix: p, Expires: s.expires})
		}
	}
	return out
}

// fromHashSet turns the elements of a hash set of addresses into single-address prefixes with their
// expiry.
func fromHashSet(elems []nftables.SetElement, v6 bool, now time.Time) []Element {
	out := make([]Element, 0, len(elems))
	for _, e := range elems {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok || a.Is6() != v6 {
			continue
		}
		el := Element{Prefix: netip.PrefixFrom(a, a.BitLen())}
		if e.Timeout != 0 {
			el.Expires = now.Add(e.Expires)
		}
		out = append(out, el)
	}
	return out
}

// rangePrefixes returns the shortest list of prefixes that cover first..last exactly.
func rangePrefixes(first, last netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	bitsTotal := first.BitLen()
	for n := 0; n <= 2*bitsTotal && first.IsValid() && first.Compare(last) <= 0; n++ {
		// The largest prefix starting at first that does not pass last.
		bits := bitsTotal
		for bits > 0 {
			p := netip.PrefixFrom(first, bits-1)
			if p.Masked().Addr() != first || lastAddr(p).Compare(last) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(first, bits)
		out = append(out, p)
		end := lastAddr(p)
		if end == last {
			break
		}
		first = end.Next()
	}
	return out
}
