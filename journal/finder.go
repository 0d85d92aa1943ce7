package journal

import (
	"fmt"

	"github.com/gaoler/gaoler/events"
)

// Finder finds journal entries again by their timestamp and sender: the daemon completes the entries
// behind a ban with it, since neither the jails' failure windows (which keep a failure's time and
// _PID) nor the Reader (which reads a cursor for the last entry of a batch only, see Entry.Cursor)
// keep a message and a cursor for every failure. It has an sd-journal handle of its own, without
// matches, and is not safe for concurrent use.
type Finder struct {
	j *sdJournal
}

// OpenFinder opens the local system's journal (dir == "") or the journal files in dir for lookups.
func OpenFinder(dir string) (*Finder, error) {
	j, err := openJournal(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	// The inotify watches make sd_journal_process see the files journald adds (rotation).
	if _, _, err := j.fd(); err != nil {
		j.close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &Finder{j: j}, nil
}

// Find returns the MESSAGE and cursor of the entry with the timestamp realtimeUsec sent by process pid
// (0: by any); ok is false when the journal has no such entry (vacuumed, or never there). When one
// process wrote several entries in the same microsecond, the first is found.
func (f *Finder) Find(realtimeUsec uint64, pid int) (message, cursor string, ok bool, err error) {
	if _, err := f.j.process(); err != nil {
		return "", "", false, fmt.Errorf("journal: %w", err)
	}
	message, cursor, ok, err = f.j.find(realtimeUsec, pid)
	if err != nil {
		return "", "", false, fmt.Errorf("journal: %w", err)
	}
	return message, cursor, ok, nil
}

// Complete fills in the Message and Cursor of the entries that lack them, finding each by its Time
// and PID (entries with no PID are left out); it returns how many it could not complete, and the first
// error.
func (f *Finder) Complete(entries []events.Entry) (missing int, err error) {
	for i := range entries {
		e := &entries[i]
		if e.Cursor != "" && e.Message != "" {
			continue
		}
		if e.PID <= 0 {
			// Without a sender to match, a lookup bisects every file's whole entry array: ten times
			// slower on a journal of many files. Such an entry (a state from before PIDs were kept)
			// stays as it is.
			missing++
			continue
		}
		msg, cur, ok, ferr := f.Find(uint64(e.Time.UnixMicro()), e.PID)
		if ferr != nil && err == nil {
			err = ferr
		}
		if !ok {
			missing++
			continue
		}
		if e.Message == "" {
			e.Message = msg
		}
		e.Cursor = cur
	}
	return missing, err
}

// Close releases the journal.
func (f *Finder) Close() error {
	f.j.close()
	return nil
}
