package journal

// Count reads, without waiting for new entries, what o selects from o.Start (or o.SinceUsec) to the
// end of the journal, and returns how many entries satisfy one of o.Matches exactly, as the daemon
// applies them (every entry when there are none), stopping at max. `gaoler doctor` uses it to tell
// whether a jail's match reads anything.
func Count(o Options, max int) (int, error) {
	r, err := Open(o)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n := 0
	for n < max {
		k, err := r.src.read(r.batch)
		if err != nil {
			return n, err
		}
		if k == 0 {
			return n, nil
		}
		for i := range r.batch[:k] {
			if satisfiesAny(o.Matches, &r.batch[i]) {
				n++
			}
		}
	}
	return max, nil
}

func satisfiesAny(ms []Match, e *Entry) bool {
	if len(ms) == 0 {
		return true
	}
	for _, m := range ms {
		if m.Satisfied(e) {
			return true
		}
	}
	return false
}
