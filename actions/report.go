package actions

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/events"
)

// Logger writes one structured journal entry; the daemon's logger implements it.
type Logger interface {
	Event(id string, pri journal.Priority, fields map[string]string, format string, args ...any)
}

// Reporter writes the actions' outcomes as journal events and counts them per action, for the
// metrics endpoint (Counts). A nil *Reporter reports and counts nothing; one with a nil Logger only
// counts.
type Reporter struct {
	Log Logger

	mu     sync.Mutex
	counts map[string]*Count
}

// Count is one action's outcomes since the daemon started.
type Count struct {
	Name                            string
	Sent, Failed, Dropped, TimedOut uint64
}

// count adds to the outcomes of action name.
func (r *Reporter) count(name string, add func(c *Count)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]*Count{}
	}
	c := r.counts[name]
	if c == nil {
		c = &Count{Name: name}
		r.counts[name] = c
	}
	add(c)
}

// Counts returns every action's outcomes so far, by name.
func (r *Reporter) Counts() []Count {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Count, 0, len(r.counts))
	for _, c := range r.counts {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *Reporter) fields(name, typ string, ev *events.Event) map[string]string {
	f := map[string]string{events.FieldAction: name, events.FieldActionType: typ}
	if ev != nil {
		f[events.FieldEvent] = ev.Kind.String()
		f[events.FieldJail] = ev.Jail
		f[events.FieldAddress] = ev.Address()
	}
	return f
}

func (r *Reporter) event(id string, pri journal.Priority, f map[string]string, format string, args ...any) {
	if r == nil || r.Log == nil {
		return
	}
	r.Log.Event(id, pri, f, format, args...)
}

// about names an outcome's event for the message: "ban of 192.0.2.7 in sshd".
func about(ev *events.Event) string {
	if ev == nil {
		return ""
	}
	return fmt.Sprintf(" for the %s of %s in %s", ev.Kind, ev.Address(), ev.Jail)
}

// Sent reports a run that did its work; ev is nil for a digest that covers several events.
func (r *Reporter) Sent(name, typ string, ev *events.Event, note string, took time.Duration) {
	r.count(name, func(c *Count) { c.Sent++ })
	if note != "" {
		note = ": " + oneLine(note)
	}
	r.event(events.MsgActionSent, journal.PriInfo, r.fields(name, typ, ev),
		"Action %s (%s) done%s in %s%s", name, typ, about(ev), took.Round(time.Millisecond), note)
}

// Skipped reports an event let go without acting because a limit said so (not a failure).
func (r *Reporter) Skipped(name, typ string, ev *events.Event, why string) {
	r.event("", journal.PriInfo, r.fields(name, typ, ev), "Action %s (%s) skipped%s: %s", name, typ, about(ev), oneLine(why))
}

// Failed reports a run that failed, and why.
func (r *Reporter) Failed(name, typ string, ev *events.Event, err error) {
	r.count(name, func(c *Count) { c.Failed++ })
	f := r.fields(name, typ, ev)
	why := oneLine(err.Error())
	f[events.FieldError] = why
	r.event(events.MsgActionFailed, journal.PriWarning, f, "Action %s (%s) failed%s: %s", name, typ, about(ev), why)
}

// TimedOut reports a run stopped at its timeout (an exec action's process group killed).
func (r *Reporter) TimedOut(name, typ string, ev events.Event, timeout time.Duration, err error) {
	r.count(name, func(c *Count) { c.TimedOut++ })
	f := r.fields(name, typ, &ev)
	why := oneLine(err.Error())
	f[events.FieldError] = why
	r.event(events.MsgActionTimedOut, journal.PriWarning, f, "Action %s (%s) timed out after %s%s: %s", name, typ, timeout, about(&ev), why)
}

// Dropped reports events an action's full queue lost.
func (r *Reporter) Dropped(name, typ string, n uint64, queue int) {
	r.count(name, func(c *Count) { c.Dropped += n })
	f := r.fields(name, typ, nil)
	f[events.FieldDropped] = strconv.FormatUint(n, 10)
	r.event(events.MsgActionDropped, journal.PriWarning, f,
		"Action %s (%s) dropped %d event(s): its queue of %d was full", name, typ, n, queue)
}

// oneLine keeps an error or note on one line, at most 500 bytes, for a journal field.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return strings.TrimSpace(s)
}
