package daemon

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/events"
)

// Logger writes gaolerd's events: structured entries to the journal when journald is there, else
// plain lines to stderr. Each event is one entry with a MESSAGE_ID and GAOLER_* fields, so machines filter
// on fields and people read MESSAGE. Safe for concurrent use.
type Logger struct {
	mu      sync.Mutex
	journal bool
	w       io.Writer
	// MinPriority drops entries less important than it (journal.PriDebug keeps everything).
	MinPriority journal.Priority
}

// NewLogger returns a Logger that writes to the journal if its socket is there, else to w.
func NewLogger(w io.Writer) *Logger {
	return &Logger{journal: journal.Enabled(), w: w, MinPriority: journal.PriDebug}
}

// NewTextLogger returns a Logger that always writes plain lines to w.
func NewTextLogger(w io.Writer) *Logger {
	return &Logger{w: w, MinPriority: journal.PriDebug}
}

// Event writes one entry. id may be empty for entries that are not events (warnings and the like).
func (l *Logger) Event(id string, pri journal.Priority, fields map[string]string, format string, args ...any) {
	if l == nil || pri > l.MinPriority {
		return
	}
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.journal {
		vars := make(map[string]string, len(fields)+2)
		for k, v := range fields {
			vars[k] = v
		}
		vars["SYSLOG_IDENTIFIER"] = events.SyslogIdentifier
		if id != "" {
			vars["MESSAGE_ID"] = id
		}
		if err := journal.Send(msg, pri, vars); err == nil {
			return
		}
		// The journal went away: fall through to the text writer rather than lose the event.
	}
	var b strings.Builder
	b.WriteString(time.Now().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteString(" ")
	b.WriteString(priorityName[pri])
	b.WriteString(": ")
	b.WriteString(msg)
	if len(fields) > 0 {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%q", k, fields[k])
		}
	}
	b.WriteString("\n")
	io.WriteString(l.w, b.String())
}

// Infof logs a plain informational line.
func (l *Logger) Infof(format string, args ...any) {
	l.Event("", journal.PriInfo, nil, format, args...)
}

// Warnf logs a plain warning.
func (l *Logger) Warnf(format string, args ...any) {
	l.Event("", journal.PriWarning, nil, format, args...)
}

// Errorf logs a plain error.
func (l *Logger) Errorf(format string, args ...any) {
	l.Event("", journal.PriErr, nil, format, args...)
}

var priorityName = map[journal.Priority]string{
	journal.PriEmerg: "emerg", journal.PriAlert: "alert", journal.PriCrit: "crit", journal.PriErr: "error",
	journal.PriWarning: "warning", journal.PriNotice: "notice", journal.PriInfo: "info", journal.PriDebug: "debug",
}
