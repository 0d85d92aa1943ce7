package jails

import (
	"fmt"
	"net/netip"
	"time"
)

// StateVersion is the version of State this package writes. Restore reads it and version 1, which
// had no origin, rule or entries for bans and no PIDs for windows: its bans are restored as the
// jails' own (OriginFilter), and its failures with no PID.
const StateVersion = 2

// State is everything the engine decided, as JSON: the daemon writes it atomically with the journal
// cursor of the last entry it handled, so that a restart resumes exactly where the engine stopped.
type State struct {
	Version int          `json:"version"`
	Jails   []JailState  `json:"jails"`
	History []HistoryRec `json:"history,omitempty"`
}

// JailState is one jail's part of State.
type JailState struct {
	Name string `json:"name"`
	// Windows are listed from the least to the most recently failed, which is the eviction order.
	Windows []WindowState `json:"windows,omitempty"`
	// Nets count the distinct failing addresses of IPv6 /64s (Settings.IPv6SubnetLimit), in the
	// same order: each time is an address's first failure.
	Nets []WindowState `json:"nets,omitempty"`
	Bans []Ban         `json:"bans,omitempty"`
	Past []Ban         `json:"past,omitempty"` // decided from a backlog after they had ended
	// Ended are the latest bans that expired or were lifted (at most EndedKept), first ended first.
	Ended    []EndedBan      `json:"ended,omitempty"`
	Forgiven []ForgivenState `json:"forgiven,omitempty"`
	Trusted  []TrustState    `json:"trusted,omitempty"` // trust after login, by address
	// Conns are the sshd connections the jail's filter follows (see Tracker), least recent first.
	Conns       []ConnState `json:"conns,omitempty"`
	LastEntry   time.Time   `json:"last_entry"`
	TotalFailed uint64      `json:"total_failed"`
	TotalBanned uint64      `json:"total_banned"`
}

// WindowState is one failure window: the failure timestamps in unix nanoseconds and the PIDs of
// their journal entries' senders (PIDs[i] goes with Times[i]), which find the entries again.
type WindowState struct {
	Prefix netip.Prefix `json:"prefix"`
	Times  []int64      `json:"times"`
	PIDs   []int32      `json:"pids,omitempty"`
}

// ForgivenState is a prefix an admin unbanned: failures before At do not count.
type ForgivenState struct {
	Prefix netip.Prefix `json:"prefix"`
	At     time.Time    `json:"at"`
}

// HistoryRec is how often a prefix was banned in a jail, and when its latest ban ended.
type HistoryRec struct {
	Jail   string       `json:"jail"`
	Prefix netip.Prefix `json:"prefix"`
	Count  int          `json:"count"`
	Last   time.Time    `json:"last"`
}

// snapshot returns the windows from the least to the most recently failed, or nil when there are none.
func (ws *windows) snapshot() []WindowState {
	if ws.len() == 0 {
		return nil
	}
	// One allocation for every window's times, one for their PIDs: a checkpoint of 20,000 tracked
	// addresses is taken once a second under attack.
	total, pidded := 0, false
	ws.each(func(w *window) {
		total += len(w.times)
		pidded = pidded || len(w.pids) > 0
	})
	times := make([]int64, 0, total)
	var pids []int32
	if pidded {
		pids = make([]int32, 0, total)
	}
	out := make([]WindowState, 0, ws.len())
	ws.each(func(w *window) {
		start := len(times)
		times = append(times, w.times...)
		end := len(times)
		s := WindowState{Prefix: w.key, Times: times[start:end:end]}
		if pidded && end > start {
			w.fill()
			pids = append(pids, w.pids[:len(w.times)]...)
			s.PIDs = pids[start:end:end]
		}
		out = append(out, s)
	})
	return out
}

// restoreWindows adds saved windows (stalest first) to ws, keeping the most recent max.
func restoreWindows(ws *windows, saved []WindowState, max int) {
	for i := len(saved) - 1; i >= 0; i-- {
		s := saved[i]
		if !s.Prefix.IsValid() || ws.m.at(s.Prefix) != nil {
			continue
		}
		w := &window{key: s.Prefix, times: append([]int64(nil), s.Times...)}
		if len(s.PIDs) == len(s.Times) && len(s.PIDs) > 0 {
			w.pids = append([]int32(nil), s.PIDs...)
		} // else a version 1 window, an IPv6 /64's count, or a damaged one: no PIDs (fill)
		ws.pushBack(w)
	}
	ws.trim(max)
}

// Restore replaces the engine's windows, bans, ended bans, forgiveness, totals and history with s. Call it after
// SetJail has configured the jails; the state of a jail not configured is dropped (its history is
// kept). Running bans are re-installed into the Firewall with their remaining time, announcing
// nothing; bans whose time is over stay until the next Expire reports them, as if the engine had never
// stopped.
func (e *Engine) Restore(s State) error {
	if s.Version != StateVersion && s.Version != 1 {
		return fmt.Errorf("jails: state version %d, want %d", s.Version, StateVersion)
	}
	e.history = make(map[string]*ledgered[record])
	e.histMin = time.Time{}
	for _, h := range s.History {
		if !h.Prefix.IsValid() {
			return fmt.Errorf("jails: state: history: invalid prefix")
		}
		recs := e.history[h.Jail]
		if recs == nil {
			recs = &ledgered[record]{}
			e.history[h.Jail] = recs
		}
		recs.set(h.Prefix, newRecord(h.Count, h.Last))
		e.histMin = earlier(e.histMin, h.Last)
	}
	now := e.now()
	var errs []error
	for _, js := range s.Jails {
		j := e.jails[js.Name]
		if j == nil {
			continue
		}
		j.windows = newWindows(j.s.keep())
		j.nets = newWindows(j.s.IPv6SubnetLimit)
		j.bans = ledgered[*Ban]{}
		j.past = ledgered[*Ban]{}
		j.wide = 0
		j.bansMin, j.pastMin = time.Time{}, time.Time{}
		j.forgiven = make(map[netip.Prefix]time.Time)
		j.lastAt, j.failed, j.banned = js.LastEntry, js.TotalFailed, js.TotalBanned
		restoreWindows(j.windows, js.Windows, j.s.maxTracked())
		if j.s.IPv6SubnetLimit > 0 {
			restoreWindows(j.nets, js.Nets, j.s.maxTracked())
		}
		for _, f := range js.Forgiven {
			j.forgiven[f.Prefix] = f.At
		}
		j.restoreTrust(js.Trusted)
		j.tracker.conns().restore(js.Conns)
		for _, b := range js.Past {
			b := b
			b.Jail = j.name
			b.bare, b.Entries = compactEntries(b.Entries)
			j.setBan(&j.past, &b)
			j.pastMin = earlier(j.pastMin, b.Expires)
		}
		j.ended = endedBans{}
		for _, b := range js.Ended {
			if b.Prefix.IsValid() {
				b.Jail = j.name
				b.bare, b.Entries = compactEntries(b.Entries)
				j.ended.add(b)
			}
		}
		for _, b := range js.Bans {
			b := b
			b.Jail = j.name
			if !b.Prefix.IsValid() {
				continue
			}
			b.bare, b.Entries = compactEntries(b.Entries)
			j.setBan(&j.bans, &b)
			j.bansMin = earlier(j.bansMin, b.Expires)
			if left := b.Expires.Sub(now); left > 0 {
				if err := e.fw.Ban(j.name, b.Prefix, left); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	// The ledgers start from sorted bases, so that the first Freeze costs what the others do.
	for _, recs := range e.history {
		recs.compact()
	}
	for _, j := range e.jails {
		j.bans.compact()
		j.past.compact()
	}
	if len(errs) > 0 {
		return fmt.Errorf("jails: re-installing bans: %w", errs[0])
	}
	return nil
}
