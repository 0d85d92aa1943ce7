package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
)

// recentSize is how many bans, and how many unbans, `gaoler why` remembers besides the running bans.
const recentSize = 1024

// recentBans remembers the latest bans and unbans the daemon announced, so that `gaoler why` shows a
// ban that is over with the rule, the origin and the entries it had, and when and why it ended. It is
// a subscriber of the daemon's Hub; its memory is bounded and not checkpointed (the running bans are,
// with their entries): after a restart it knows the bans since.
type recentBans struct {
	mu     sync.Mutex
	bans   []events.Event // oldest first
	unbans []endedBan     // oldest first
}

// endedBan is an unban as the Hub announced it, and when it was heard.
type endedBan struct {
	ev events.Event
	at time.Time
}

func (r *recentBans) observe(ev events.Event) {
	if ev.Origin.Kind == events.OriginRestored {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Kind {
	case events.Ban:
		r.bans = appendBounded(r.bans, ev)
	case events.Unban:
		ev.Entries = nil // the ban's, kept with it
		r.unbans = appendBounded(r.unbans, endedBan{ev, time.Now()})
	}
}

func appendBounded[T any](l []T, v T) []T {
	if len(l) >= recentSize {
		copy(l, l[1:])
		l[len(l)-1] = v
		return l
	}
	return append(l, v)
}

// ended returns the recent bans of jails holding a that are not among running (newest first), with how
// each ended.
func (r *recentBans) ended(a netip.Addr, jails map[string]bool, running []bus.WhyBan, now time.Time) []bus.WhyBan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []bus.WhyBan
	for i := len(r.bans) - 1; i >= 0; i-- {
		ev := r.bans[i]
		if !jails[ev.Jail] || !ev.Prefix.Contains(a) || isRunning(ev, running) {
			continue
		}
		w := whyBan(ev.Jail, ev.Prefix, ev.BannedAt, ev.Expires, ev.Count, ev.Origin, ev.Rule, ev.Entries)
		for j := len(r.unbans) - 1; j >= 0; j-- {
			u := r.unbans[j]
			if u.ev.Jail == ev.Jail && u.ev.Prefix == ev.Prefix && u.ev.BannedAt.Equal(ev.BannedAt) {
				w.Ended, w.EndReason = u.at, u.ev.Reason
				if u.ev.Reason == "expired" && !ev.Expires.IsZero() {
					w.Ended = ev.Expires
				}
				break
			}
		}
		if w.EndReason == "" && !ev.Expires.After(now) {
			w.Ended, w.EndReason = ev.Expires, "expired"
		}
		out = append(out, w)
	}
	return out
}

func isRunning(ev events.Event, running []bus.WhyBan) bool {
	for _, b := range running {
		if b.Jail == ev.Jail && b.Prefix == events.PrefixString(ev.Prefix) && b.BannedAt.Equal(ev.BannedAt) {
			return true
		}
	}
	return false
}

// whyBan is a ban as Why replies with it.
func whyBan(jail string, p netip.Prefix, at, expires time.Time, count int, o events.Origin, rule string, entries []events.Entry) bus.WhyBan {
	w := bus.WhyBan{
		Jail: jail, Prefix: events.PrefixString(p), BannedAt: at, Expires: expires, Count: count,
		Rule: rule, Origin: o.Kind.String(), Peer: o.Peer, Entries: make([]bus.WhyLine, 0, len(entries)),
	}
	if o.Kind == events.OriginManual {
		uid := o.UID
		w.UID = &uid
	}
	for _, e := range entries {
		w.Entries = append(w.Entries, bus.WhyLine{Time: e.Time, Cursor: e.Cursor, Message: e.Message, PID: e.PID})
	}
	return w
}

// Why explains address for `gaoler why`: the running bans holding it (from the engine, with the entries
// the checkpoint keeps), the recent ones that ended, and for each jail that does not ban it now, what
// keeps it from doing so (ignoreip, ignoreself, the trust after login).
func (b backend) Why(address, jail string) (bus.WhyReply, error) {
	a, perr := netip.ParseAddr(address)
	if perr != nil {
		return bus.WhyReply{}, fmt.Errorf("%w: %q", bus.ErrInvalidAddress, address)
	}
	a = a.Unmap()
	r := bus.WhyReply{Address: a.String()}
	asked := map[string]bool{}
	var err error
	if derr := b.d.do(func() {
		var names []string
		if jail != "" {
			if b.d.jailConfig(jail) == nil {
				err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
				return
			}
			names = []string{jail}
		} else {
			for _, j := range b.d.active {
				names = append(names, j.name)
			}
		}
		for _, name := range names {
			asked[name] = true
			banned := false
			for _, ban := range b.d.engine.Bans(name) {
				if ban.Prefix.Contains(a) {
					r.Bans = append(r.Bans, runningWhy(ban))
					banned = true
				}
			}
			if banned {
				continue
			}
			not := bus.WhyNot{Jail: name, Ignored: ignoredBy(b.d.jailConfig(name), a)}
			not.Trusted = b.d.whyTrust(name, a)
			r.NotBanned = append(r.NotBanned, not)
		}
	}); derr != nil {
		return bus.WhyReply{}, derr
	}
	if err != nil {
		return bus.WhyReply{}, err
	}
	r.Bans = append(r.Bans, b.d.recent.ended(a, asked, r.Bans, time.Now())...)
	return r, nil
}

func runningWhy(b jails.Ban) bus.WhyBan {
	w := whyBan(b.Jail, b.Prefix, b.BannedAt, b.Expires, b.Count, b.Origin, b.Rule, b.Entries)
	w.Active = true
	return w
}

// ignoredBy names the setting that makes jail j ignore a: "ignoreip 192.0.2.0/24" or "ignoreself";
// "" when none does.
func ignoredBy(j *config.Jail, a netip.Addr) string {
	if j == nil {
		return ""
	}
	for _, p := range j.Settings.IgnoreIP {
		if p.Contains(a) {
			return "ignoreip " + events.PrefixString(p)
		}
	}
	if j.Settings.IgnoreSelf {
		addrs, _ := net.InterfaceAddrs()
		for _, ia := range addrs {
			if ipn, ok := ia.(*net.IPNet); ok {
				if own, ok := netip.AddrFromSlice(ipn.IP); ok && own.Unmap() == a {
					return "ignoreself: an address of this host"
				}
			}
		}
	}
	return ""
}
