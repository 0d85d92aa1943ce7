package metrics

import (
	"sync"

	"github.com/gaoler/gaoler/events"
)

// Tally counts bans by origin and unbans by reason, per jail, from the daemon's events: subscribe its
// Observe to the daemon's events.Hub. Its counts go into each scrape's Snapshot through Fill. The Hub's
// queue for it can overflow only in a flood of thousands of bans at once; gaoler_events_dropped_total
// {subscriber="metrics"} says so when it does. Safe for concurrent use.
type Tally struct {
	mu    sync.Mutex
	jails map[string]*tallyJail
}

type tallyJail struct {
	bans     map[string]uint64
	unbans   map[string]uint64
	restored uint64
}

// NewTally returns an empty Tally.
func NewTally() *Tally { return &Tally{jails: map[string]*tallyJail{}} }

// Observe counts ev.
func (t *Tally) Observe(ev events.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j := t.jails[ev.Jail]
	if j == nil {
		j = &tallyJail{bans: map[string]uint64{}, unbans: map[string]uint64{}}
		t.jails[ev.Jail] = j
	}
	switch {
	case ev.Kind == events.Ban && ev.Origin.Kind == events.OriginRestored:
		j.restored++
	case ev.Kind == events.Ban:
		j.bans[ev.Origin.Kind.String()]++
	case ev.Kind == events.Unban:
		j.unbans[ev.Reason]++
	}
}

// Fill copies the counts into the jails of s that it knows.
func (t *Tally) Fill(s *Snapshot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range s.Jails {
		j := t.jails[s.Jails[i].Name]
		if j == nil {
			continue
		}
		s.Jails[i].Bans = copyCounts(j.bans)
		s.Jails[i].Unbans = copyCounts(j.unbans)
		s.Jails[i].Restored = j.restored
	}
}

func copyCounts(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
