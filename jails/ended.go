package jails

import "time"

// EndedKept is how many ended bans each jail remembers, with their entries, for `gaoler why`: the
// latest ones; past it, the ban that ended first is forgotten. They are part of the State, so they
// outlive a restart.
const EndedKept = 100

// EndedBan is a ban that is over: it expired, it was lifted (Reason is then Unbanned's reason:
// "manual", "peer", "unban-all"), or a new ban of its prefix replaced it ("replaced": an admin's
// longer ban, a peer's). Ended is when: the ban's Expires for an expired ban (the kernel dropped the
// element then), the time of the unban or of the new ban otherwise.
type EndedBan struct {
	Ban
	Ended  time.Time
	Reason string
}

// endedBans is a jail's latest ended bans, at most EndedKept: a ring, whose oldest ban is
// overwritten first (an attack's flood of expiries costs one copy each, not a shift of the list).
type endedBans struct {
	l    []EndedBan
	next int // once l is full: the oldest, overwritten by the next add
}

// add remembers b, forgetting the oldest ended ban when there are EndedKept.
func (r *endedBans) add(b EndedBan) {
	if len(r.l) < EndedKept {
		r.l = append(r.l, b)
		return
	}
	r.l[r.next] = b
	r.next = (r.next + 1) % EndedKept
}

// list returns the ended bans from the first to end to the latest (a copy: the Entries are shared,
// as they are with the running bans), or nil.
func (r *endedBans) list() []EndedBan {
	if len(r.l) == 0 {
		return nil
	}
	out := make([]EndedBan, 0, len(r.l))
	out = append(out, r.l[r.next:]...)
	return append(out, r.l[:r.next]...)
}

// Ended returns the jail's latest ended bans (at most EndedKept), from the first to end to the
// latest; nil for a jail that is not configured.
func (e *Engine) Ended(jailName string) []EndedBan {
	if j := e.jails[jailName]; j != nil {
		return j.ended.list()
	}
	return nil
}
