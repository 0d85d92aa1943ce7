package jails

import "fmt"

// Counters are a jail's figures for monitoring. Unlike Stats, they cost the same with 10 or 200,000
// tracked addresses: nothing is walked.
type Counters struct {
	Active         int               // running bans
	Tracked        int               // failure windows kept
	TotalFailed    uint64            // failures counted
	TotalBanned    uint64            // bans decided
	FailuresByRule map[string]uint64 // failures counted, by the filter rule that matched (a copy)
}

// Counters returns the jail's Counters, or ErrNoSuchJail.
func (e *Engine) Counters(jailName string) (Counters, error) {
	j := e.jails[jailName]
	if j == nil {
		return Counters{}, fmt.Errorf("%w %q", ErrNoSuchJail, jailName)
	}
	c := Counters{
		Active: j.bans.len(), Tracked: j.windows.len(),
		TotalFailed: j.failed, TotalBanned: j.banned,
		FailuresByRule: make(map[string]uint64, len(j.byRule)),
	}
	for r, n := range j.byRule {
		c.FailuresByRule[r] = n
	}
	return c, nil
}
