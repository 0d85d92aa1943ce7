package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/journal"
)

// loop is the main loop: everything but the journal's batches (bus requests, reloads, ticks) happens
// here. It is called holding mu and holds it except while it waits.
func (d *Daemon) loop(ctx context.Context) error {
	// No fixed ticker: the loop sleeps until the next thing that is due (a ban's end, a checkpoint,
	// a watchdog ping), so an idle daemon wakes rarely. The reader kicks it when a batch makes
	// something due sooner.
	now := d.now()
	d.armed = d.nextTick(now)
	timer := time.NewTimer(d.armed.Sub(now))
	defer timer.Stop()
	for {
		d.unlock()
		var fn func()
		fired := false
		select {
		case <-ctx.Done():
			d.mu.Lock()
			return d.stop()
		case fn = <-d.reqs:
		case <-d.opts.Reload:
			fn = func() { _ = d.reload() } // a failed reload is logged there, and the running config stays
		case err := <-d.readerDone:
			fn = func() {
				d.readerCancel = nil
				d.log.Errorf("journal reader stopped: %v; reopening at the last processed entry", err)
				d.readerRetry = d.now().Add(time.Second)
			}
		case <-d.kick:
		case <-timer.C:
			fired = true
		}
		d.mu.Lock()
		if fn != nil {
			fn()
		}
		if fired {
			d.tick(d.now())
		}
		timer.Stop()
		now := d.now()
		d.armed = d.nextTick(now)
		timer.Reset(d.armed.Sub(now))
	}
}

// maxSleep is the longest the main loop sleeps: STATUS= ("failures in the last hour") and the
// engine's housekeeping (old windows, history) are refreshed at least this often.
const maxSleep = time.Minute

// nextTick returns when tick should run next: the earliest of a due checkpoint, the end of the next
// running ban, the next watchdog ping, a reader to reopen and, while the reader is hot or failures
// wait to be summed up, a second from now (STATUS= shows the hot countdown).
func (d *Daemon) nextTick(now time.Time) time.Time {
	next := now.Add(maxSleep)
	consider := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	if d.dirty {
		consider(d.lastSave.Add(d.saveEvery))
	}
	if t, ok := d.engine.NextExpiry(); ok {
		consider(t)
	}
	if d.watchdog > 0 {
		consider(d.lastPing.Add(d.watchdog))
	}
	if d.readerCancel == nil && !d.readerRetry.IsZero() {
		consider(d.readerRetry)
	}
	if d.failureLog.suppressed > 0 || d.flushFailed {
		consider(now.Add(time.Second))
	}
	if d.reader != nil {
		if hot, _ := d.reader.Mode(); hot {
			consider(now.Add(time.Second))
		}
	}
	// Never spin: something due but not doable (a hung reader withholding the watchdog ping) is
	// looked at again shortly.
	if floor := now.Add(50 * time.Millisecond); next.Before(floor) {
		next = floor
	}
	return next
}

// tick runs when nextTick said something is due: it retires expired bans, writes a due checkpoint,
// reopens a failed reader, pings the watchdog and refreshes STATUS=.
func (d *Daemon) tick(now time.Time) {
	if len(d.engine.Expire(now)) > 0 {
		d.dirty = true
	}
	if d.reader != nil {
		// Expired windows and manual bans and unbans change what is one failure from a ban.
		d.reader.SetNearBan(d.engine.NearBan())
	}
	d.commit() // a failed Flush is logged there, and tried again at the next commit
	if n := d.failureLog.take(); n > 0 {
		d.log.Event("", sdjournal.PriDebug, map[string]string{events.FieldCount: strconv.Itoa(n)},
			"%d failures counted without an entry each (a backlog, or more than %d a second)", n, failureLogRate)
	}
	if d.saver.takeFailed() {
		d.dirty = true // a checkpoint could not be written: try again
	}
	if d.dirty && now.Sub(d.lastSave) >= d.saveEvery && !d.saver.busy() {
		d.save()
	}
	if d.readerCancel == nil && !d.readerRetry.IsZero() && !now.Before(d.readerRetry) {
		if err := d.startReader(journal.Position{Cursor: d.cursor, RealtimeUsec: d.realtimeUsec}); err != nil {
			d.log.Errorf("%v", err) // "journal: ..."
			d.readerRetry = now.Add(5 * time.Second)
		} else {
			d.readerRetry = time.Time{}
		}
	}
	// Ping at WATCHDOG_USEC/2 (nextTick wakes the loop then; a wake-up a hair early still pings).
	if d.watchdog > 0 && now.Sub(d.lastPing) >= d.watchdog-10*time.Millisecond && d.readerHealthy(now) {
		d.notify(sddaemon.SdNotifyWatchdog)
		d.lastPing = now
	}
	d.updateStatus()
}

// readerHealthy tells the watchdog whether the journal side works: a reader that is waiting for
// entries or reading without being stuck in the journal for a whole watchdog period, or one being
// reopened after a failure within that period. A hung reader stops the pings, and systemd restarts
// gaolerd (Restart=on-failure), which resumes at the checkpoint.
func (d *Daemon) readerHealthy(now time.Time) bool {
	if d.readerCancel != nil {
		return d.reader.Busy() < d.watchdog
	}
	return now.Before(d.readerRetry.Add(d.watchdog))
}

func (d *Daemon) updateStatus() {
	s := d.summary()
	if s != d.lastStatus {
		d.notify("STATUS=" + s)
		d.lastStatus = s
	}
}

// summary is the one line of STATUS= and of the started/reloaded entries.
func (d *Daemon) summary() string {
	bans := 0
	names := make([]string, len(d.active))
	for i, j := range d.active {
		names[i] = j.name
		if st, err := d.engine.Stats(j.name); err == nil {
			bans += st.CurrentlyBanned
		}
	}
	jailWord := "jails"
	if len(names) == 1 {
		jailWord = "jail"
	}
	return fmt.Sprintf("%d %s (%s), %d bans, %d failures in the last hour; reader %s",
		len(names), jailWord, strings.Join(names, ", "), bans, d.failures.lastHour(d.now()), d.readerMode())
}
