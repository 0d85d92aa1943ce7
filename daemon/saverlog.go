package daemon

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// summaryEvery is how often the saver sums up checkpoint writes that keep failing.
const summaryEvery = 10 * time.Minute

// writeErrors decides what the journal hears of failed checkpoint writes. Under attack the daemon
// checkpoints every second; a full or read-only state directory would make that an error a second.
// Instead the first failure of each kind (no space, read-only, permission, quota, other) is logged in
// full, then one summary every summaryEvery while writes keep failing, and one line when a write
// succeeds again. Bans never wait for the checkpoint: only what a restart would resume from is late.
type writeErrors struct {
	logged  map[string]bool // kinds logged since the last good write
	failed  int             // failed writes since the last good write
	since   time.Time       // the first of them
	summary time.Time       // when the last summary (or the first error) was logged
	last    error
}

// kindOf names what went wrong with a write, for "once per kind".
func kindOf(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "other"
	}
	switch errno {
	case syscall.ENOSPC:
		return "no space left"
	case syscall.EDQUOT:
		return "quota exceeded"
	case syscall.EROFS:
		return "read-only file system"
	case syscall.EACCES, syscall.EPERM:
		return "permission denied"
	case syscall.EIO:
		return "I/O error"
	}
	return "other"
}

// fail records a failed write at now and returns what to log, or nil.
func (w *writeErrors) fail(err error, now time.Time) error {
	if w.failed == 0 {
		w.since, w.summary = now, now
	}
	w.failed++
	w.last = err
	kind := kindOf(err)
	if w.logged == nil {
		w.logged = make(map[string]bool)
	}
	if !w.logged[kind] {
		w.logged[kind] = true
		return fmt.Errorf("%w; bans go on, and the checkpoint is written again by itself once the state directory takes it (further failures are summed up every %s)",
			err, summaryEvery)
	}
	if now.Sub(w.summary) >= summaryEvery {
		w.summary = now
		return fmt.Errorf("checkpoint: %d writes failed since %s (%s; last: %v); bans go on",
			w.failed, w.since.Format(time.RFC3339), w.kinds(), w.last)
	}
	return nil
}

// ok records a good write and returns the line to log if writes had failed, or "".
func (w *writeErrors) ok(now time.Time) string {
	if w.failed == 0 {
		return ""
	}
	msg := fmt.Sprintf("checkpoint: written again after %d failed writes since %s (%s)",
		w.failed, w.since.Format(time.RFC3339), w.kinds())
	*w = writeErrors{}
	return msg
}

func (w *writeErrors) kinds() string {
	var ks []string
	for _, k := range []string{"no space left", "quota exceeded", "read-only file system", "permission denied", "I/O error", "other"} {
		if w.logged[k] {
			ks = append(ks, k)
		}
	}
	return strings.Join(ks, ", ")
}
