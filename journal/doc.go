// Package journal reads the systemd journal for gaoler: it follows the union of the jails' matches,
// delivers entries in batches with only the fields the jails need, resumes exactly after a saved
// position, and never stalls across journal rotation, vacuuming or a restart of journald. It knows
// entries, not jails: whether an entry was a failure reaches it through the callback's return value.
//
// # Why an own binding to sd-journal
//
// The package binds libsystemd's sd-journal(3) directly with cgo instead of using go-systemd's
// sdjournal, for three reasons. First, a reader must be cancellable while it waits for new entries:
// sdjournal's Wait blocks in sd_journal_wait while holding the Journal's mutex, so nothing can interrupt
// it short of an entry arriving; this package polls the journal's inotify descriptor
// (sd_journal_get_fd) together with an eventfd of its own, so cancelling a context wakes it at once.
// Second, sdjournal makes one cgo call, one mutex round trip and one call through a dlopen()ed function
// pointer per field of every entry, and allocates a Go string per value; this package advances and reads
// up to 1024 entries in one call to a small C helper, which copies the wanted fields of each entry into
// one buffer during a single pass over the entry's items (sd_journal_enumerate_data). Third, it needs
// calls that sdjournal does not expose (sd_journal_process, sd_journal_get_events,
// sd_journal_get_timeout). sdjournal stays the reference "bare loop" in this package's benchmark.
//
// # Latency
//
// journald coalesces the inotify notifications that wake a blocked reader for 250 ms
// (POST_CHANGE_TIMER_INTERVAL_USEC), although an entry is readable from the journal file within a
// fraction of a millisecond. The Reader therefore has two modes. Cold, it blocks in poll(2) with no
// timeout and costs nothing on a quiet host. When the callback reports a failure whose own timestamp
// is within Options.Hold of now (a live attack, not a backlog), it turns hot: it calls sd_journal_next
// about every millisecond until Hold has passed since the last such failure, then blocks again.
//
// # The stuck tail
//
// libsystemd remembers, per journal file, the file's entry count (header n_entries) at the moment it
// last reached the end of that file; while the count is unchanged, sd_journal_next does not look at the
// file again (next_beyond_location: LOCATION_TAIL with n_entries == last_n_entries). journald, however,
// increments n_entries when it links a new entry into the file's global entry array, and only afterwards
// links the entry into the entry arrays of its data objects, which is what a match walks. A reader that
// polls between these two steps finds no matching entry, records the new count, and from then on skips
// the file until another entry (of any kind) is appended to it, which on a quiet host may be seconds
// later. Seeking (sd_journal_seek_cursor) resets every file's location, so the Reader re-positions
// itself after the last entry it delivered whenever journald's notification arrives with nothing new,
// and every 25 ms while hot and idle: no entry is held back longer than journald's own notification.
//
// # Positions
//
// A Position is a cursor (sd_journal_get_cursor) with the entry's timestamp. Only the last entry of a
// batch carries its cursor (Entry.Cursor): the C helper formats one cursor per batch, not one per entry,
// and that is the one a checkpoint and the Reader's own re-positioning need. sd_journal_seek_cursor
// lands ON the entry with that cursor (or, when it is gone, on the next one), so the Reader checks the
// first entry after a seek with sd_journal_test_cursor and skips it when it is the saved one: the
// callback sees every entry after the position exactly once. See sd_journal_seek_cursor(3).
package journal
