// Package bareloop is the benchmarks' reference journal reader: go-systemd's sdjournal over a
// directory of journal files with a match, sd_journal_next and MESSAGE for every entry, as any Go
// program would read them. The benchmarks run it in their own process (testenv.BareLoop) and, to
// compare whole processes with gaolerd, as a program of its own (cmd/bareloop).
package bareloop

import (
	"github.com/coreos/go-systemd/v22/sdjournal"
)

// Read reads every entry of the journal files in dir that match (sd-journal terms, "+" between
// alternatives) and the MESSAGE of each. It returns how many entries it read and the timestamp of
// the last one.
func Read(dir string, match []string) (n int, lastUsec uint64, err error) {
	j, err := sdjournal.NewJournalFromDir(dir)
	if err != nil {
		return 0, 0, err
	}
	defer j.Close()
	for _, t := range match {
		if t == "+" {
			err = j.AddDisjunction()
		} else {
			err = j.AddMatch(t)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	for {
		r, err := j.Next()
		if err != nil {
			return n, 0, err
		}
		if r == 0 {
			break
		}
		if _, err := j.GetDataValue("MESSAGE"); err != nil {
			return n, 0, err
		}
		n++
	}
	if n > 0 {
		j.Previous()
		lastUsec, err = j.GetRealtimeUsec()
	}
	return n, lastUsec, err
}
