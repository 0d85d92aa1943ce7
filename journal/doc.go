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
// timeout and costs nothing on a quiet host. Hot, it looks for new entries about every millisecond.
//
// It is hot only while reading the next failure at once can make a ban (Reader.SetNearBan, which the
// daemon calls after each batch with the jails' answer): while some address is one failure from its
// ban, for Options.Hold after the last live failure (one whose own timestamp is within Hold of now:
// an attack, not a backlog); and all the time while some jail bans at every failure (maxretry 1). A
// failure that leaves its address short of that (the first of an attack, the single failures of an
// internet-facing sshd's background noise) costs nothing: it is read when journald says so, and the
// ban it may lead to is still decided, within journald's 250 ms.
//
// # Watching the headers
//
// A hot poll must cost next to nothing, since it runs a thousand times a second. sd_journal_next, even
// when it finds nothing, walks libsystemd's file and match structures; instead the Reader maps the
// first page of each journal file journald writes to (the active files: system.journal and the user
// journals, whose names have no '@', in /run/log/journal and /var/log/journal under the machine ID, or
// in Options.Directory and its subdirectories) read-only and shared, and reads the files' n_entries
// (offset 152 of the header, systemd's JOURNAL_FILE_FORMAT), which journald increments as it appends
// each entry. A hot poll is a poll(2) of 1 ms on the inotify and wake descriptors and one memory load
// per file, in a small C loop that the Go side calls for 5 ms at a time (a cgo call of 10 ms or more
// draws Go's sysmon into polling every 20 us); only when a count moved does the Reader call
// sd_journal_next. journald's own notifications still arrive through inotify and are processed as
// when cold.
//
// Rotation, restarts and vacuuming: journald marks the file it writes online while appending,
// offline after each sync and when it stops, and archived when it rotates it, in the same header. A
// watched file that is archived makes the watch look for the active files again (and the Reader
// read, in case), as does sd-journal reporting files added or removed (SD_JOURNAL_INVALIDATE: a
// rotation, a vacuum, journald replacing a file it found dirty at start). A file is mapped only once
// it holds a whole page (journald creates a file before writing its header); while no active file is
// found (journald stopped, a directory of archived files) the watch looks again every 100 ms and the
// hot Reader falls back to asking sd-journal every millisecond. Vacuuming removes archived files
// only, which are not watched; the mapped page of a deleted file stays valid until unmapped.
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
// itself after the last entry it delivered whenever a change (journald's notification, or a moved
// header count) brings nothing new, and once more 2 ms later while hot (every 25 ms while hot
// without a header watch): no entry is held back longer than journald's own notification.
//
// # Reading a backlog
//
// sd-journal is given one field of each alternative of the matches (Match.SDTerms) and looks each of
// its terms up in the current file at every step, whether the file holds that value or not. The sshd
// filter's default match names values that a host with one OpenSSH version never logs
// (sshd.service or ssh.service, sshd-session and sshd-auth before OpenSSH 9.8 and 10.0): on opening,
// the Reader asks for each term whether any journal file holds it, and while it reads the backlog it
// gives sd-journal only the terms that are held (an alternative left with none is dropped). A
// second sd-journal handle, the probe, selects the left-out terms; after each batch is read it is
// asked whether an entry with one of them exists now, and if one does the batch is not delivered:
// the Reader re-reads from its last position with every term. At the end of the backlog every term
// is given for good and the probe is closed, so following the live journal is as before. On the
// benchmark journal this took a tenth off gaolerd's catch-up CPU.
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
