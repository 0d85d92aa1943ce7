package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
)

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

// Why explains address for `gaoler why`: the running bans holding it, then the recent ones that ended
// (the latest jails.EndedKept of each jail), newest first, all from the engine with the entries the
// checkpoint keeps, so that a restart forgets none of them; and for each jail that does not ban it now,
// what keeps it from doing so (ignoreip, ignoreself, the trust after login).
func (b backend) Why(address, jail string) (bus.WhyReply, error) {
	a, perr := netip.ParseAddr(address)
	if perr != nil {
		return bus.WhyReply{}, fmt.Errorf("%w: %q", bus.ErrInvalidAddress, address)
	}
	a = a.Unmap()
	r := bus.WhyReply{Address: a.String()}
	var ended []bus.WhyBan
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
			for _, e := range b.d.engine.Ended(name) {
				if e.Prefix.Contains(a) {
					ended = append(ended, endedWhy(e))
				}
			}
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
	slices.SortStableFunc(ended, func(x, y bus.WhyBan) int { return y.Ended.Compare(x.Ended) })
	r.Bans = append(r.Bans, ended...)
	return r, nil
}

func endedWhy(e jails.EndedBan) bus.WhyBan {
	w := whyBan(e.Jail, e.Prefix, e.BannedAt, e.Expires, e.Count, e.Origin, e.Rule, e.AllEntries())
	w.Ended, w.EndReason = e.Ended, e.Reason
	return w
}

func runningWhy(b jails.Ban) bus.WhyBan {
	w := whyBan(b.Jail, b.Prefix, b.BannedAt, b.Expires, b.Count, b.Origin, b.Rule, b.AllEntries())
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
