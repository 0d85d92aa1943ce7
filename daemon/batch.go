package daemon

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/journal"
)

// longestFindTime is how far back a first start reads, so an attack under way is caught.
func longestFindTime(cfg *config.Config) time.Duration {
	var longest time.Duration
	for _, j := range cfg.Enabled() {
		if j.Settings.FindTime > longest {
			longest = j.Settings.FindTime
		}
	}
	return longest
}

// startReader opens the journal at pos (after the entry at pos.Cursor) and runs it on its own
// goroutine, which handles each batch itself, holding mu.
func (d *Daemon) startReader(pos journal.Position) error {
	var matches []journal.Match
	for _, j := range d.active {
		matches = append(matches, j.match)
	}
	since := d.now().Add(-longestFindTime(d.cfg))
	open := func(o journal.Options) (JournalReader, error) { return journal.Open(o) }
	if d.opts.OpenJournal != nil {
		open = d.opts.OpenJournal
	}
	r, err := open(journal.Options{
		Directory: d.cfg.Journal.Directory,
		Matches:   matches,
		Start:     pos,
		SinceUsec: uint64(since.UnixMicro()),
		Hold:      d.cfg.Journal.HotTime,
		Warn:      func(msg string) { d.log.Warnf("journal: %s", msg) },
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(d.ctx)
	r.SetNearBan(d.engine.NearBan())
	d.reader, d.readerCancel = r, cancel
	done := d.readerDone
	go func() {
		err := r.Run(ctx, func(batch []journal.Entry) uint64 {
			d.mu.Lock()
			defer d.unlock()
			if ctx.Err() != nil {
				return 0 // stopped: the next reader reads these again, after the last processed cursor
			}
			last := d.handleBatch(batch)
			r.SetNearBan(d.engine.NearBan())
			if now := d.now(); d.nextTick(now).Before(d.armed) {
				select { // the main loop sleeps past something this batch made due
				case d.kick <- struct{}{}:
				default:
				}
			}
			return last
		})
		r.Close()
		if ctx.Err() != nil {
			err = nil
		}
		done <- err
	}()
	return nil
}

// stopReader stops the reader goroutine and waits for it. Entries it had read but not handled are
// read again by the next reader, which starts at the last processed cursor. The caller holds mu; it
// is let go while waiting, for a reader that waits for it with a batch (the batch is not handled).
func (d *Daemon) stopReader() {
	if d.readerCancel == nil {
		return
	}
	d.readerCancel()
	d.unlock()
	<-d.readerDone
	d.mu.Lock()
	d.readerCancel = nil
}

// saverShare is how many times its last write's duration the periodic checkpoint waits at least:
// the saver writes 1/saverShare of the time at most.
const saverShare = 20

// handleBatch routes each entry to the jails whose matches it satisfies, sends the resulting bans
// to the kernel, and records the batch's last cursor. It returns the timestamp of the newest failure
// (for the reader's hot mode).
func (d *Daemon) handleBatch(batch []journal.Entry) uint64 {
	if len(batch) == 0 {
		return 0
	}
	var lastFailure uint64
	now := d.now()
	d.batchNow = now
	for i := range batch {
		e := &batch[i]
		if e.Field("_PID") == d.pid || e.Field("_COMM") == "gaolerd" {
			continue // the daemon never counts its own entries
		}
		entry := events.Entry{Time: time.UnixMicro(int64(e.Realtime)), Message: e.Message, Cursor: e.Cursor, PID: -1}
		for k := range d.active {
			j := &d.active[k]
			if !j.match.Satisfied(e) {
				continue
			}
			if entry.PID < 0 {
				// A _PID that is not a number (no sender sets it: journald does) is 0, unknown.
				entry.PID, _ = strconv.Atoi(e.Field("_PID"))
			}
			if d.engine.Handle(j.name, entry) {
				j.failed = true
				if e.Realtime > lastFailure {
					lastFailure = e.Realtime
				}
				d.failures.add(now)
			}
		}
	}
	// Retire what is over: running bans whose time ran out, and bans a backlog decided that the
	// entries read since have outlived. Done per batch, a catch-up keeps only the bans of the last
	// bantime in memory instead of every ban it ever decided.
	d.engine.Expire(now)
	last := &batch[len(batch)-1]
	d.cursor = strings.Clone(last.Cursor)
	d.realtimeUsec = last.Realtime
	d.dirty = true
	d.commit() // a failed Flush is logged there, and tried again at the next commit
	// Once per batch, not per failure: the bus coalesces its signals anyway.
	for k := range d.active {
		if j := &d.active[k]; j.failed {
			j.failed = false
			if d.bus != nil {
				d.bus.CountersChanged(j.name)
			}
		}
	}
	if len(d.preCrash) > 0 && last.Realtime >= uint64(d.start.UnixMicro()) {
		d.preCrash = nil // caught up: from here on every ban is new
	}
	// A full batch means a backlog is being read: checkpoint less often then (the state of 20,000
	// tracked addresses is ~2 MB of JSON); after a crash the entries since are simply read again.
	d.saveEvery = d.opts.CheckpointInterval
	if len(batch) == journal.BatchSize {
		d.saveEvery *= 10
	}
	// And never more than a saverShare of the time writing: a checkpoint of 100,000 bans is 15 MB,
	// tens of milliseconds to encode and write, which once a second took the CPU the reader's next
	// ban needed. After a crash the entries since are read again, deciding the same.
	d.saveEvery = max(d.saveEvery, saverShare*d.saver.cost())
	if d.now().Sub(d.lastSave) >= d.saveEvery && !d.saver.busy() {
		d.save()
	}
	return lastFailure
}

// minuteCounter counts events in the last hour, a minute at a time, for STATUS=.
type minuteCounter struct {
	minutes [60]struct {
		at int64
		n  int
	}
}

func (c *minuteCounter) add(now time.Time) {
	m := now.Unix() / 60
	slot := &c.minutes[m%60]
	if slot.at != m {
		slot.at, slot.n = m, 0
	}
	slot.n++
}

func (c *minuteCounter) lastHour(now time.Time) int {
	m := now.Unix() / 60
	total := 0
	for _, s := range c.minutes {
		if m-s.at < 60 {
			total += s.n
		}
	}
	return total
}
