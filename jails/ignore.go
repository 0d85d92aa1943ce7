package jails

import (
	"fmt"
	"net/netip"
)

// No ban locks the host out: a jail never bans a prefix that holds an address it ignores (ignoreip, or
// with ignoreself one of the host's own addresses). A manual ban of such a prefix is refused; a prefix
// the engine decides itself (an offender's IPv6 /ipv6_prefix) falls back to the offender's single
// address. This file holds that rule.

// WithNotice sets where the engine reports what an admin should know once but that is no ban or
// failure: today, that an IPv6 /ipv6_prefix holding an ignored address is banned address by address.
// By default such notices are dropped.
func WithNotice(fn func(jail, msg string)) Option {
	return func(e *Engine) { e.notice = fn }
}

// Refusal is a manual ban's address that the engine refuses, with a message that stands on its own
// ("0.0.0.0/0 contains 127.0.0.0/8, which jail sshd ignores"). It matches ErrInvalidAddress, and also
// ErrIgnored when the address overlaps the jail's ignore list, with errors.Is.
type Refusal struct {
	Ignored bool   // the prefix overlaps an ignored prefix or one of the host's own addresses
	Msg     string // what is wrong, naming the overlap or the prefix that was probably meant
}

// Error returns the message.
func (r *Refusal) Error() string { return r.Msg }

// Is matches ErrInvalidAddress, and ErrIgnored for an overlap.
func (r *Refusal) Is(target error) bool {
	return target == ErrInvalidAddress || (r.Ignored && target == ErrIgnored)
}

// setIgnore sets what the jail ignores: ignoreIP and the host's own addresses self. It also finds the
// IPv6 /ipv6_prefix prefixes that hold an ignored address (an ignored prefix at least as long), whose
// offenders are banned address by address. A wider ignored prefix needs nothing: every address of a
// /ipv6_prefix inside it is ignored anyway.
func (j *jail) setIgnore(ignoreIP, self []netip.Prefix) {
	j.ignore = append([]netip.Prefix(nil), ignoreIP...)
	j.self = nil
	for _, a := range self {
		if !j.ignored(a.Addr()) { // ignoreip names it already (::1, 127.0.0.1)
			j.self = append(j.self, a)
		}
	}
	j.ignore = append(j.ignore, j.self...)
	j.narrow = nil
	n := j.s.IPv6Prefix
	if n <= 0 || n >= 128 {
		return
	}
	for _, q := range j.ignore {
		if !q.Addr().Is6() || q.Bits() < n {
			continue
		}
		wide, _ := q.Addr().Prefix(n)
		if j.narrow == nil {
			j.narrow = make(map[netip.Prefix]netip.Prefix)
		}
		if _, ok := j.narrow[wide]; !ok {
			j.narrow[wide] = q
		}
	}
}

// key returns what a failure of a, or a manual ban of the bare address a, is counted and banned by: the
// jail's key (the address, or its IPv6 /ipv6_prefix), or the address alone when that prefix holds an
// ignored address. narrowedFrom is then the prefix it was not banned as.
func (j *jail) key(a netip.Addr) (k, narrowedFrom netip.Prefix) {
	k = j.s.key(a)
	if j.narrow == nil || k.Bits() == a.BitLen() {
		return k, netip.Prefix{}
	}
	if _, ok := j.narrow[k]; ok {
		return netip.PrefixFrom(a, a.BitLen()), k
	}
	return k, netip.Prefix{}
}

// keyNoting is key, and tells the engine's notice, once per prefix, that a prefix is banned address
// by address.
func (e *Engine) keyNoting(j *jail, a netip.Addr) netip.Prefix {
	k, wide := j.key(a)
	if !wide.IsValid() || j.noted[wide] {
		return k
	}
	if j.noted == nil {
		j.noted = make(map[netip.Prefix]bool)
	}
	j.noted[wide] = true
	if e.notice != nil {
		e.notice(j.name, fmt.Sprintf("%s holds %s: its offenders are banned address by address (%s first), never as the /%d of ipv6_prefix",
			wide, j.describe(j.narrow[wide]), k.Addr(), wide.Bits()))
	}
	return k
}

// refuseOverlap returns a Refusal when p holds, or lies inside, an ignored prefix of the jail, and nil
// when no ignored address is in p.
func (j *jail) refuseOverlap(p netip.Prefix) error {
	for _, q := range j.ignore {
		if !q.Overlaps(p) {
			continue
		}
		var msg string
		switch {
		case q.Bits() > p.Bits():
			msg = fmt.Sprintf("%s contains %s", showPrefix(p), j.describe(q))
		case q == p && j.isSelf(q):
			msg = fmt.Sprintf("%s is an address of this host, which jail %s ignores (ignoreself)", showPrefix(p), j.name)
		case q == p:
			msg = fmt.Sprintf("%s is in jail %s's ignoreip", showPrefix(p), j.name)
		default:
			msg = fmt.Sprintf("%s is inside %s", showPrefix(p), j.describe(q))
		}
		return &Refusal{Ignored: true, Msg: msg}
	}
	return nil
}

// describe names an ignored prefix q for a message: "127.0.0.0/8, which jail sshd ignores", or
// "203.0.113.1, an address of this host, which jail sshd ignores (ignoreself)".
func (j *jail) describe(q netip.Prefix) string {
	if j.isSelf(q) {
		return fmt.Sprintf("%s, an address of this host, which jail %s ignores (ignoreself)", showPrefix(q), j.name)
	}
	return fmt.Sprintf("%s, which jail %s ignores", showPrefix(q), j.name)
}

// isSelf reports whether q came from the host's own addresses, not from ignoreip.
func (j *jail) isSelf(q netip.Prefix) bool {
	for _, s := range j.self {
		if s == q {
			return true
		}
	}
	return false
}

// hostBits returns a Refusal for p typed as s when p has bits set past its length (127.0.0.0/7 would
// ban 126.0.0.0/7), naming the prefixes that were probably meant: the one of that length holding the
// address, and the widest prefix that starts at the address (127.0.0.0/8).
func hostBits(s string, p netip.Prefix) error {
	masked := p.Masked()
	if masked == p {
		return nil
	}
	a := p.Addr()
	widest := netip.PrefixFrom(a, a.BitLen())
	for bits := a.BitLen() - 1; bits > p.Bits(); bits-- {
		if q := netip.PrefixFrom(a, bits); q.Masked() == q {
			widest = q
		} else {
			break
		}
	}
	return &Refusal{Msg: fmt.Sprintf("%s has host bits set: did you mean %s, or %s?", s, masked, showPrefix(widest))}
}

// showPrefix writes a host prefix as its address (192.0.2.7) and any other as a CIDR (2001:db8::/64).
func showPrefix(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}
