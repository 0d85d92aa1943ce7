package journal

// ReadToEnd reads, without waiting for new entries, what o selects from o.Start (or o.SinceUsec) to
// the end of the journal, and calls fn with each entry that satisfies one of o.Matches exactly, as the
// daemon applies them (every entry when there are none), until fn returns false. The entry and its
// strings may be kept only until fn returns, except the strings, which may be kept. `gaoler
// test-filter --journal` and `gaoler doctor` read the journal this way.
func ReadToEnd(o Options, fn func(e *Entry) bool) error {
	r, err := Open(o)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		k, err := r.src.read(r.batch)
		if err != nil {
			return err
		}
		if k == 0 {
			return nil
		}
		for i := range r.batch[:k] {
			if satisfiesAny(o.Matches, &r.batch[i]) && !fn(&r.batch[i]) {
				return nil
			}
		}
	}
}

// Count returns how many entries ReadToEnd would hand over, stopping at max.
func Count(o Options, max int) (int, error) {
	n := 0
	err := ReadToEnd(o, func(*Entry) bool {
		n++
		return n < max
	})
	return n, err
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
