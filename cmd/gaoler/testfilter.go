package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/journal"
)

const testFilterSynopsis = "test-filter FILTER [--mode MODE] [--config PATH] [--json] [--print-all-missed] [--top N] " +
	"[FILE | - | --journal | --directory DIR] [--since TIME]"

// testFilterStdin is what SOURCE "-" reads; tests replace it.
var testFilterStdin io.Reader = os.Stdin

// missedShown is how many missed lines the summary lists unless --print-all-missed is given.
const missedShown = 20

// testFilter is a filter under test, with what the summary says about it.
type testFilter struct {
	name, mode, origin string // origin: "built in" or "config file.toml"
	filter             *jails.Filter
	tracker            *jails.Tracker    // the filter's per-connection rules, as the daemon applies them
	match              []string          // journal match (journal sources only)
	ignore             []*regexp.Regexp  // a config filter's ignoreregex, to tell ignored from missed
	patterns           map[string]string // a config filter's rule name -> its failregex, for the summary
}

// filterResult is what the filter made of one input line.
type filterResult struct {
	Line    int    `json:"line"`
	Time    string `json:"time,omitempty"` // journal sources: the entry's timestamp
	Message string `json:"message"`
	Match   bool   `json:"match"`
	Host    string `json:"host,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Ignored bool   `json:"ignored,omitempty"` // an ignoreregex matched
	PID     int    `json:"pid,omitempty"`     // the sshd process (connection) of the line, when known
	// Repeat: the line reports an attempt already counted on its connection (it adds no failure);
	// Login: a successful login (Host, User).
	Repeat bool   `json:"repeat,omitempty"`
	Login  bool   `json:"login,omitempty"`
	User   string `json:"user,omitempty"`
}

// filterSummary counts the results; it is also the "summary" object of --json.
type filterSummary struct {
	Filter  string         `json:"filter"`
	Mode    string         `json:"mode,omitempty"`
	Source  string         `json:"source"`
	Match   []string       `json:"journal_match,omitempty"`
	Lines   int            `json:"lines"`
	Matched int            `json:"matched"`
	Missed  int            `json:"missed"`
	Ignored int            `json:"ignored"`
	Repeats int            `json:"repeats"`
	Logins  int            `json:"logins"`
	Rules   map[string]int `json:"rules"`
	Hosts   map[string]int `json:"hosts"`

	missed, ignored, logins []filterResult
}

// runTestFilter implements `gaoler test-filter`, the fail2ban-regex of gaoler: it runs a filter over log
// lines and reports which lines are failures, from which address, by which rule, and which lines missed.
func runTestFilter(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test-filter", flag.ContinueOnError)
	mode := fs.String("mode", "", "the built-in filter's mode (normal, ddos, aggressive)")
	cfgPath := fs.String("config", "", "read [filter.NAME] tables from this configuration")
	asJSON := fs.Bool("json", false, "one JSON object per line, then a summary object")
	allMissed := fs.Bool("print-all-missed", false, "list every missed line, not only the first 20")
	top := fs.Int("top", 10, "how many hosts to list")
	useJournal := fs.Bool("journal", false, "read this host's journal")
	dir := fs.String("directory", "", "read the journal files in DIR")
	since := fs.String("since", "", "journal sources: start at TIME")
	rest, err := parseArgs(fs, args)
	if err == nil {
		err = wantArgs(rest, 1, 2, testFilterSynopsis)
	}
	journalSource := *useJournal || *dir != ""
	if err == nil && journalSource && len(rest) == 2 {
		err = usageErrorf("test-filter: give a FILE or --journal or --directory, not both")
	}
	if err == nil && *useJournal && *dir != "" {
		err = usageErrorf("test-filter: give --journal or --directory, not both")
	}
	if err == nil && *since != "" && !journalSource {
		err = usageErrorf("test-filter: --since needs --journal or --directory")
	}
	var sinceUsec uint64
	if err == nil && *since != "" {
		var t time.Time
		t, err = parseSince(*since, time.Now(), time.Local)
		sinceUsec = uint64(t.UnixMicro())
	}
	if err != nil {
		fmt.Fprintf(stderr, "gaoler: %s\n", err)
		return exitUsage
	}

	tf, err := loadTestFilter(rest[0], *mode, *cfgPath)
	if err != nil {
		for _, line := range configErrors(err) {
			fmt.Fprintf(stderr, "gaoler: %s\n", line)
		}
		return exitUsage
	}
	sum := &filterSummary{Filter: tf.name, Mode: tf.mode, Rules: map[string]int{}, Hosts: map[string]int{}}
	for _, r := range tf.filter.Rules() {
		sum.Rules[r] = 0
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	emit := func(r filterResult) {
		sum.add(r, tf)
		if *asJSON {
			writeJSONLine(out, r)
		}
	}

	switch {
	case journalSource:
		if len(tf.match) == 0 {
			fmt.Fprintf(stderr, "gaoler: test-filter: filter %s has no journal_match to read the journal with\n", tf.name)
			return exitUsage
		}
		sum.Source, sum.Match = "journal", tf.match
		if *dir != "" {
			sum.Source = "journal files in " + *dir
		}
		err = filterJournal(*dir, tf, sinceUsec, emit)
	default:
		name := "-"
		if len(rest) == 2 {
			name = rest[1]
		}
		sum.Source = name
		if name == "-" {
			sum.Source = "stdin"
			err = filterText(testFilterStdin, tf, emit)
		} else {
			var f *os.File
			if f, err = os.Open(name); err == nil {
				err = filterText(f, tf, emit)
				f.Close()
			}
		}
	}
	if err != nil {
		out.Flush()
		fmt.Fprintf(stderr, "gaoler: test-filter: %v\n", err)
		return exitRuntime
	}
	if *asJSON {
		writeJSONLine(out, map[string]any{"summary": sum})
		return exitOK
	}
	sum.print(out, tf, journalSource, *top, *allMissed)
	return exitOK
}

// loadTestFilter finds the filter: a built-in one, unless --config is given or the name is not built
// in; then a [filter.NAME] table of the configuration.
func loadTestFilter(name, mode, cfgPath string) (*testFilter, error) {
	if cfgPath == "" {
		m := mode
		if m == "" {
			m = "normal"
		}
		f, err := jails.Builtin(name, m)
		if err == nil {
			return newTestFilter(&testFilter{name: name, mode: m, origin: "built in", filter: f, match: f.DefaultMatch()}), nil
		}
		if !errors.Is(err, jails.ErrUnknownFilter) {
			return nil, usageErrorf("test-filter: %v", err)
		}
		cfgPath = config.DefaultPath
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	def, ok := cfg.Filters[name]
	if !ok {
		m := mode
		if m == "" {
			m = "normal"
		}
		if f, err := jails.Builtin(name, m); err == nil {
			return newTestFilter(&testFilter{name: name, mode: m, origin: "built in", filter: f, match: f.DefaultMatch()}), nil
		} else if !errors.Is(err, jails.ErrUnknownFilter) {
			return nil, usageErrorf("test-filter: %v", err)
		}
		return nil, usageErrorf("test-filter: unknown filter %q: not built in, and no [filter.%s] in %s", name, name, strings.Join(cfg.Files, ", "))
	}
	if mode != "" {
		return nil, usageErrorf("test-filter: --mode: filter %q is defined in the config and has no modes", name)
	}
	tf := &testFilter{name: name, origin: "defined in " + cfgPath, filter: def.Filter, match: def.JournalMatch,
		patterns: make(map[string]string)}
	for i, p := range def.FailRegex {
		tf.patterns[fmt.Sprintf("failregex[%d]", i)] = p
	}
	for _, p := range def.IgnoreRegex {
		if re, err := regexp.Compile(p); err == nil {
			tf.ignore = append(tf.ignore, re)
		}
	}
	return newTestFilter(tf), nil
}

// newTestFilter gives tf its Tracker.
func newTestFilter(tf *testFilter) *testFilter {
	tf.tracker = jails.NewTracker(tf.filter)
	return tf
}

// syslogPrefix matches what a syslog file puts before the message: an optional <PRI>, a timestamp
// (RFC 3164 "Nov 24 10:00:00", optionally with fractions and a year, or ISO 8601 as rsyslog and
// journalctl -o short-iso write it), the host, and the tag "sshd[12]:" (with the sender's process
// id, which is sshd's connection).
var syslogPrefix = regexp.MustCompile(`^(?:<\d{1,3}>)?` +
	`([A-Z][a-z]{2} [ 0-9]?[0-9] (?:\d{4} )?\d{2}:\d{2}:\d{2}(?:\.\d+)?|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)` +
	` \S+ [^\s\[\]:]+(?:\[(\d{1,9})\])?: `)

// syslogTimes are the layouts of syslogPrefix's timestamps, for time.Parse.
var syslogTimes = []string{"Jan _2 15:04:05", "Jan _2 2006 15:04:05", time.RFC3339Nano, "2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700", "2006-01-02 15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// syslogLine is a line of text taken apart.
type syslogLine struct {
	msg string
	pid int       // 0: no "[PID]" in the tag (or no prefix)
	at  time.Time // zero: no timestamp that parses
}

// parseSyslog returns the message of a syslog line, with the process id and time of its prefix, or
// the line itself when it has no syslog prefix.
func parseSyslog(line string) syslogLine {
	m := syslogPrefix.FindStringSubmatchIndex(line)
	if m == nil {
		return syslogLine{msg: line}
	}
	l := syslogLine{msg: line[m[1]:]}
	if m[4] >= 0 {
		l.pid, _ = strconv.Atoi(line[m[4]:m[5]])
	}
	stamp := strings.Replace(line[m[2]:m[3]], ",", ".", 1)
	for _, layout := range syslogTimes {
		if t, err := time.Parse(layout, stamp); err == nil {
			if t.Year() == 0 { // RFC 3164 writes no year: take this one's, as syslog readers do
				t = t.AddDate(time.Now().Year(), 0, 0)
			}
			l.at = t
			break
		}
	}
	return l
}

// stripSyslog returns the message of a syslog line, or the line itself when it has no syslog prefix.
func stripSyslog(line string) string { return parseSyslog(line).msg }

// filterText runs the filter over lines of text. Blank lines and lines starting with '#' are skipped
// (but counted for line numbers, so that they match an editor's). The connection of a line is the
// process id of its syslog tag ("sshd[12]:"); a line without a timestamp is taken to be as old as
// the line before it.
func filterText(r io.Reader, tf *testFilter, emit func(filterResult)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var at time.Time
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		l := parseSyslog(line)
		if !l.at.IsZero() {
			at = l.at
		}
		emit(tf.run(n, events.Entry{Time: at, Message: l.msg, PID: l.pid}))
	}
	return sc.Err()
}

// filterJournal runs the filter over the journal entries that satisfy its match (and so its trust
// rule), from sinceUsec (0: the oldest) to the end.
func filterJournal(dir string, tf *testFilter, sinceUsec uint64, emit func(filterResult)) error {
	m, err := journal.ParseMatch(tf.match)
	if err != nil {
		return fmt.Errorf("filter %s: journal_match: %v", tf.name, err)
	}
	// As the daemon reads, with the daemon's reader: sd-journal pre-selects with the terms it can
	// match, and the match itself decides (a term "FIELD=" asks for an entry without FIELD).
	n := 0
	return journal.ReadToEnd(journal.Options{Directory: dir, Matches: []journal.Match{m}, SinceUsec: sinceUsec, Hold: -1},
		func(e *journal.Entry) bool {
			n++
			pid, _ := strconv.Atoi(e.Field("_PID"))
			at := time.UnixMicro(int64(e.Realtime))
			r := tf.run(n, events.Entry{Time: at, Message: e.Message, PID: pid})
			r.Time = at.UTC().Format(time.RFC3339Nano)
			emit(r)
			return true
		})
}

// run tests one entry, after the entries before it, as the daemon's engine does.
func (tf *testFilter) run(n int, e events.Entry) filterResult {
	r := filterResult{Line: n, Message: e.Message, PID: e.PID}
	switch res := tf.tracker.Next(e); res.Kind {
	case jails.Failure:
		r.Match, r.Host, r.Rule = true, res.Addr.String(), res.Rule
		return r
	case jails.Repeat:
		r.Repeat, r.Rule = true, res.Rule
		if res.Addr.IsValid() {
			r.Host = res.Addr.String()
		}
		return r
	case jails.Login:
		r.Login, r.Host, r.User = true, res.Addr.String(), res.User
		return r
	}
	for _, re := range tf.ignore {
		if re.MatchString(e.Message) {
			r.Ignored = true
			break
		}
	}
	return r
}

func (s *filterSummary) add(r filterResult, tf *testFilter) {
	s.Lines++
	switch {
	case r.Match:
		s.Matched++
		s.Rules[r.Rule]++
		s.Hosts[r.Host]++
	case r.Repeat:
		s.Repeats++
	case r.Login:
		s.Logins++
		s.logins = append(s.logins, r)
	case r.Ignored:
		s.Ignored++
		s.ignored = append(s.ignored, r)
	default:
		s.Missed++
		s.missed = append(s.missed, r)
	}
}

// print writes the summary for people, in the spirit of fail2ban-regex.
func (s *filterSummary) print(w io.Writer, tf *testFilter, journalSource bool, top int, allMissed bool) {
	filter := tf.name
	if tf.mode != "" {
		filter += " (mode " + tf.mode + ")"
	}
	fmt.Fprintf(w, "Filter:   %s, %s\n", filter, tf.origin)
	if journalSource {
		fmt.Fprintf(w, "Source:   %s\n", s.Source)
		fmt.Fprintf(w, "Match:    %s (entries from other senders are not read)\n", strings.Join(s.Match, " "))
	} else {
		how := "message patterns only"
		if tf.name == "sshd" && tf.origin == "built in" {
			how = "message patterns, connections by the sshd[PID] tag"
		}
		fmt.Fprintf(w, "Source:   %s (text: %s; journal matches and trust are not applied)\n", s.Source, how)
	}
	fmt.Fprintf(w, "\nLines:    %d read, %d matched, %d missed", s.Lines, s.Matched, s.Missed)
	if tf.ignore != nil || s.Ignored > 0 {
		fmt.Fprintf(w, ", %d ignored", s.Ignored)
	}
	if s.Repeats > 0 {
		fmt.Fprintf(w, ", %d repeated an attempt already counted", s.Repeats)
	}
	if s.Logins > 0 {
		fmt.Fprintf(w, ", %d logins", s.Logins)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\nRules (hits):\n")
	width := 1
	for _, r := range tf.filter.Rules() {
		width = max(width, len(fmt.Sprint(s.Rules[r])))
	}
	for _, r := range tf.filter.Rules() {
		if p, ok := tf.patterns[r]; ok {
			fmt.Fprintf(w, "  %*d  %s  %s\n", width, s.Rules[r], r, p)
		} else {
			fmt.Fprintf(w, "  %*d  %s\n", width, s.Rules[r], r)
		}
	}

	hosts := make([]string, 0, len(s.Hosts))
	for h := range s.Hosts {
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(a, b int) bool {
		if s.Hosts[hosts[a]] != s.Hosts[hosts[b]] {
			return s.Hosts[hosts[a]] > s.Hosts[hosts[b]]
		}
		x, _ := netip.ParseAddr(hosts[a])
		y, _ := netip.ParseAddr(hosts[b])
		return x.Less(y)
	})
	if len(hosts) > 0 {
		shown := hosts
		if top >= 0 && len(shown) > top {
			shown = shown[:top]
			fmt.Fprintf(w, "\nHosts (top %d of %d):\n", top, len(hosts))
		} else {
			fmt.Fprintf(w, "\nHosts (%d):\n", len(hosts))
		}
		width = len(fmt.Sprint(s.Hosts[hosts[0]]))
		for _, h := range shown {
			fmt.Fprintf(w, "  %*d  %s\n", width, s.Hosts[h], h)
		}
	}

	printLines(w, "Logins", s.logins, allMissed)
	printLines(w, "Ignored lines", s.ignored, allMissed)
	printLines(w, "Missed lines", s.missed, allMissed)
}

// printLines lists lines of the input under a title, only the first few unless all is set.
func printLines(w io.Writer, title string, lines []filterResult, all bool) {
	if len(lines) == 0 {
		return
	}
	shown := lines
	if !all && len(shown) > missedShown {
		shown = shown[:missedShown]
		fmt.Fprintf(w, "\n%s (first %d of %d; --print-all-missed lists all):\n", title, missedShown, len(lines))
	} else {
		fmt.Fprintf(w, "\n%s (%d):\n", title, len(lines))
	}
	width := len(fmt.Sprint(shown[len(shown)-1].Line))
	for _, r := range shown {
		fmt.Fprintf(w, "  %*d: %s\n", width, r.Line, r.Message)
	}
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) {
	b, err := jsonMarshal(v)
	if err != nil {
		return
	}
	w.Write(append(b, '\n'))
}
