package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/sdjournal"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

const logSynopsis = "log [-f] [-n N] [--jail JAIL] [--since TIME] [--json] [--directory DIR]"

// eventNames names each of gaolerd's MESSAGE_IDs for --json.
var eventNames = map[string]string{
	events.MsgStarted: "started", events.MsgStopped: "stopped", events.MsgReloaded: "reloaded",
	events.MsgConfigError: "config error", events.MsgBan: "ban", events.MsgUnban: "unban",
	events.MsgFailure: "failure", events.MsgFirewallRestored: "firewall restored",
}

// logEvent is one of gaolerd's journal entries, as `gaoler log --json` prints it.
type logEvent struct {
	Time        string `json:"time"`
	Usec        uint64 `json:"usec"`
	Event       string `json:"event"`
	Jail        string `json:"jail,omitempty"`
	Address     string `json:"address,omitempty"`
	BanTime     uint64 `json:"bantime,omitempty"`
	ExpiresUsec uint64 `json:"expires_usec,omitempty"`
	BanCount    uint64 `json:"ban_count,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Rule        string `json:"rule,omitempty"`
	Count       uint64 `json:"count,omitempty"`
	// Origin is who made a ban ("filter", "manual", "peer"), UID the caller of a manual one, Peer the
	// fleet peer; ByUID is the caller of a manual unban.
	Origin   string  `json:"origin,omitempty"`
	UID      *uint64 `json:"uid,omitempty"`
	Peer     string  `json:"peer,omitempty"`
	ByUID    *uint64 `json:"by_uid,omitempty"`
	Message  string  `json:"message"`
	Priority int     `json:"priority"`
	Host     string  `json:"host,omitempty"`
	PID      int     `json:"pid,omitempty"`

	ident  string
	cursor string
}

// logQuery is what to read.
type logQuery struct {
	dir       string // "" = the system journal
	jail      string // "" = every jail, and the daemon's own events
	sinceUsec uint64 // 0 = from the start
	n         int    // the last n events; 0 = all
}

// runLog implements `gaoler log`: gaolerd's events (bans, unbans, failures, starts, reloads, ...) read
// from the journal by MESSAGE_ID and written like `journalctl` short output, or as JSON.
func runLog(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return logCommand(ctx, args, stdout, stderr)
}

// logCommand is runLog until ctx is cancelled (which ends -f).
func logCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("log", flag.ContinueOnError)
	follow := fs.Bool("f", false, "keep printing events as they are logged")
	fs.BoolVar(follow, "follow", false, "the same as -f")
	n := fs.Int("n", -1, "print only the last N events (default: all; 10 with -f)")
	fs.IntVar(n, "lines", -1, "the same as -n")
	jail := fs.String("jail", "", "only events of this jail")
	since := fs.String("since", "", `start at TIME: "2026-11-25 10:00:00", "today", "yesterday", "-1h", "1h ago"`)
	asJSON := fs.Bool("json", false, "JSON: one document (an array), or with -f one object per line")
	dir := fs.String("directory", "", "read the journal files in DIR instead of this host's journal")
	rest, err := parseArgs(fs, args)
	if err == nil {
		err = wantArgs(rest, 0, 0, logSynopsis)
	}
	q := logQuery{dir: *dir, jail: *jail, n: *n}
	if err == nil && *since != "" {
		var t time.Time
		if t, err = parseSince(*since, time.Now(), time.Local); err == nil {
			q.sinceUsec = uint64(t.UnixMicro())
		}
	}
	if err == nil && *n < -1 {
		err = usageErrorf("log: -n must be 0 or more")
	}
	if err != nil {
		fmt.Fprintf(stderr, "gaoler: %s\n", err)
		return exitUsage
	}
	if q.n == -1 {
		q.n = 0
		if *follow {
			q.n = 10
		}
	}

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	j, err := openEventJournal(q.dir, eventMatch(q.jail))
	if err != nil {
		fmt.Fprintf(stderr, "gaoler: log: %v\n", err)
		return exitRuntime
	}
	defer j.Close()
	events, err := readEvents(j, q)
	if err != nil {
		fmt.Fprintf(stderr, "gaoler: log: %v\n", err)
		return exitRuntime
	}
	switch {
	case *asJSON && !*follow:
		if events == nil {
			events = []logEvent{}
		}
		writeJSON(out, events)
		return exitOK
	default:
		for _, e := range events {
			printEvent(out, e, *asJSON, time.Local)
		}
	}
	if !*follow {
		return exitOK
	}
	out.Flush()
	last := ""
	if len(events) > 0 {
		last = events[len(events)-1].cursor
	}
	err = followEvents(ctx, j, last, func(e logEvent) {
		printEvent(out, e, *asJSON, time.Local)
		out.Flush()
	})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "gaoler: log: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

// recentEvents returns the last n events of jail ("" for every jail) from this host's journal, written
// like journalctl's short output; `gaoler status` ends with them.
func recentEvents(jail string, n int) ([]string, error) {
	j, err := openEventJournal("", eventMatch(jail))
	if err != nil {
		return nil, err
	}
	defer j.Close()
	events, err := readEvents(j, logQuery{jail: jail, n: n})
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(events))
	for i, e := range events {
		lines[i] = shortLine(e, time.Local)
	}
	return lines, nil
}

// eventMatch is the journal match for gaolerd's events, of one jail or all: every MESSAGE_ID (the same
// field OR'ed) and, for one jail, GAOLER_JAIL (a different field, AND'ed).
func eventMatch(jail string) []string {
	var terms []string
	for _, id := range events.EventIDs {
		terms = append(terms, "MESSAGE_ID="+id)
	}
	if jail != "" {
		terms = append(terms, events.FieldJail+"="+jail)
	}
	return terms
}

// openEventJournal opens the system journal, or the journal files in dir, with journalctl-style match
// terms ("+" between alternatives).
func openEventJournal(dir string, terms []string) (*sdjournal.Journal, error) {
	var j *sdjournal.Journal
	var err error
	if dir != "" {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, serr
		}
		j, err = sdjournal.NewJournalFromDir(dir)
	} else {
		j, err = sdjournal.NewJournal()
	}
	if err != nil {
		return nil, fmt.Errorf("opening the journal: %w", err)
	}
	for _, t := range terms {
		if t == "+" {
			err = j.AddDisjunction()
		} else {
			err = j.AddMatch(t)
		}
		if err != nil {
			j.Close()
			return nil, fmt.Errorf("journal match %q: %w", t, err)
		}
	}
	return j, nil
}

// readEvents reads the events q asks for, oldest first.
func readEvents(j *sdjournal.Journal, q logQuery) ([]logEvent, error) {
	if q.sinceUsec == 0 && q.n > 0 {
		// The last n: walk back from the tail.
		if err := j.SeekTail(); err != nil {
			return nil, err
		}
		var out []logEvent
		for len(out) < q.n {
			ok, err := j.Previous()
			if err != nil {
				return nil, err
			}
			if ok == 0 {
				break
			}
			e, err := currentEvent(j)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
			out[a], out[b] = out[b], out[a]
		}
		return out, nil
	}
	var err error
	if q.sinceUsec > 0 {
		err = j.SeekRealtimeUsec(q.sinceUsec)
	} else {
		err = j.SeekHead()
	}
	if err != nil {
		return nil, err
	}
	var out []logEvent
	for {
		ok, err := j.Next()
		if err != nil {
			return nil, err
		}
		if ok == 0 {
			return out, nil
		}
		e, err := currentEvent(j)
		if err != nil {
			return nil, err
		}
		if q.n > 0 && len(out) == q.n {
			copy(out, out[1:])
			out = out[:len(out)-1]
		}
		out = append(out, e)
	}
}

// followEvents prints the events logged after the entry with cursor last ("" = after the current
// tail) until ctx is cancelled.
func followEvents(ctx context.Context, j *sdjournal.Journal, last string, fn func(logEvent)) error {
	if last != "" {
		if err := j.SeekCursor(last); err != nil {
			return err
		}
		// A seek lands ON the entry with the cursor: step onto it, so that Next moves past it.
		if _, err := j.Next(); err != nil {
			return err
		}
	} else {
		if err := j.SeekTail(); err != nil {
			return err
		}
		if _, err := j.Previous(); err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		ok, err := j.Next()
		if err != nil {
			return err
		}
		if ok == 0 {
			// sd_journal_wait holds the Journal's lock; a short timeout keeps Ctrl-C prompt.
			j.Wait(200 * time.Millisecond)
			continue
		}
		e, err := currentEvent(j)
		if err != nil {
			return err
		}
		fn(e)
	}
	return ctx.Err()
}

// currentEvent reads the entry the journal is on.
func currentEvent(j *sdjournal.Journal) (logEvent, error) {
	entry, err := j.GetEntry()
	if err != nil {
		return logEvent{}, err
	}
	f := entry.Fields
	num := func(k string) uint64 {
		n, _ := strconv.ParseUint(f[k], 10, 64)
		return n
	}
	e := logEvent{
		Usec:        entry.RealtimeTimestamp,
		Time:        time.UnixMicro(int64(entry.RealtimeTimestamp)).UTC().Format(time.RFC3339Nano),
		Event:       eventNames[f["MESSAGE_ID"]],
		Jail:        f[events.FieldJail],
		Address:     f[events.FieldAddress],
		BanTime:     num(events.FieldBanTime),
		ExpiresUsec: num(events.FieldExpires),
		BanCount:    num(events.FieldBanCount),
		Reason:      f[events.FieldReason],
		Rule:        f[events.FieldRule],
		Count:       num(events.FieldCount),
		Origin:      f[events.FieldOrigin],
		UID:         optNum(f, events.FieldUID),
		Peer:        f[events.FieldPeer],
		ByUID:       optNum(f, events.FieldByUID),
		Message:     f["MESSAGE"],
		Host:        f["_HOSTNAME"],
		ident:       f["SYSLOG_IDENTIFIER"],
		cursor:      entry.Cursor,
	}
	e.Priority = 6
	if p, err := strconv.Atoi(f["PRIORITY"]); err == nil {
		e.Priority = p
	}
	if e.ident == "" {
		e.ident = f["_COMM"]
	}
	pid := f["_PID"]
	if pid == "" {
		pid = f["SYSLOG_PID"]
	}
	e.PID, _ = strconv.Atoi(pid)
	return e, nil
}

// optNum is the number in field k of f, or nil when the entry has none.
func optNum(f map[string]string, k string) *uint64 {
	n, err := strconv.ParseUint(f[k], 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// shortLine writes an event as journalctl's short output does: "Nov 25 10:00:00 host gaolerd[123]: ...".
func shortLine(e logEvent, loc *time.Location) string {
	var b strings.Builder
	b.WriteString(time.UnixMicro(int64(e.Usec)).In(loc).Format("Jan 02 15:04:05"))
	if e.Host != "" {
		b.WriteString(" " + e.Host)
	}
	b.WriteString(" " + e.ident)
	if e.PID > 0 {
		fmt.Fprintf(&b, "[%d]", e.PID)
	}
	b.WriteString(": " + e.Message)
	return b.String()
}

func printEvent(w io.Writer, e logEvent, asJSON bool, loc *time.Location) {
	if asJSON {
		writeJSONLine(w, e)
		return
	}
	fmt.Fprintln(w, shortLine(e, loc))
}

// parseSince parses the TIME of --since: "2026-11-25 10:00:00" (or without seconds, or a date alone),
// "10:00" (today), "now", "today", "yesterday", or a time ago: "-1h", "1h ago", "-1d12h", in loc.
func parseSince(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	now = now.In(loc)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	switch s {
	case "now":
		return now, nil
	case "today":
		return midnight, nil
	case "yesterday":
		return midnight.AddDate(0, 0, -1), nil
	}
	ago, isAgo := strings.CutSuffix(s, " ago")
	if !isAgo {
		ago, isAgo = strings.CutPrefix(s, "-")
	}
	if isAgo {
		d, err := config.ParseDuration(strings.ReplaceAll(strings.TrimSpace(ago), " ", ""))
		if err != nil {
			return time.Time{}, usageErrorf("--since %q: %v", s, err)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return midnight.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageErrorf(`--since %q: use "2026-11-25 10:00:00", "today", "yesterday", "-1h" or "1h ago"`, s)
}

// jsonMarshal is json.Marshal without escaping <, > and &, which log messages contain.
func jsonMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
