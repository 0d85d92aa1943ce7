package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/gaoler/gaoler/bus"
)

// recentCount is how many recent events status shows, as systemctl status shows the last log lines.
const recentCount = 5

// statusJSON is `gaoler status --json` without a jail.
type statusJSON struct {
	Version string   `json:"version"`
	Reader  string   `json:"reader"`
	Jails   []string `json:"jails"`
	// Fleet is this host's fleet (fleet mode), absent without one.
	Fleet  *bus.FleetReply `json:"fleet,omitempty"`
	Events []string        `json:"events"`
}

// jailStatusJSON is `gaoler status JAIL --json`.
type jailStatusJSON struct {
	Jail            string   `json:"jail"`
	Filter          string   `json:"filter"`
	JournalMatch    []string `json:"journal_match"`
	FindTime        uint64   `json:"findtime"`
	BanTime         uint64   `json:"bantime"`
	MaxRetry        uint32   `json:"maxretry"`
	CurrentlyFailed uint32   `json:"currently_failed"`
	TotalFailed     uint64   `json:"total_failed"`
	CurrentlyBanned uint32   `json:"currently_banned"`
	TotalBanned     uint64   `json:"total_banned"`
	Banned          []string `json:"banned"`
	// The trust after login: how many addresses, and for how long a login trusts one (seconds).
	CurrentlyTrusted *uint32  `json:"currently_trusted,omitempty"`
	TrustAfterLogin  *uint64  `json:"trust_after_login,omitempty"`
	Reader           string   `json:"reader"`
	Events           []string `json:"events"`
}

// status is `gaoler status [JAIL] [--json]`.
func (e *env) status(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(args, 0, 1, "status [JAIL] [--json]"); err != nil {
		return err
	}
	d, err := e.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	if len(args) == 1 {
		return e.jailStatus(d, args[0], *asJSON)
	}

	var s statusJSON
	if s.Version, err = d.Version(); err != nil {
		return explain(err, "", "")
	}
	if s.Reader, err = d.Reader(); err != nil {
		return explain(err, "", "")
	}
	if s.Jails, err = d.Jails(); err != nil {
		return explain(err, "", "")
	}
	s.Events = e.recent("")
	if f, ok := fleetStatus(d); ok {
		s.Fleet = f
	}
	if *asJSON {
		return writeJSON(e.stdout, s)
	}
	w := e.stdout
	fmt.Fprintln(w, e.bold("Status"))
	fmt.Fprintf(w, "|- Version:\t%s\n", s.Version)
	fmt.Fprintf(w, "|- Reader:\t%s\n", s.Reader)
	fmt.Fprintf(w, "|- Number of jail:\t%d\n", len(s.Jails))
	if s.Fleet == nil {
		fmt.Fprintf(w, "`- Jail list:\t%s\n", strings.Join(s.Jails, ", "))
	} else {
		fmt.Fprintf(w, "|- Jail list:\t%s\n", strings.Join(s.Jails, ", "))
		printFleet(w, s.Fleet)
	}
	e.printEvents(s.Events)
	return nil
}

// jailStatus prints one jail in the shape of `fail2ban-client status sshd`.
func (e *env) jailStatus(d api, name string, asJSON bool) error {
	j, err := d.Jail(name)
	if err != nil {
		return explain(err, name, "")
	}
	bans, err := d.ListBans(name)
	if err != nil {
		return explain(err, name, "")
	}
	reader, err := d.Reader()
	if err != nil {
		return explain(err, name, "")
	}
	s := jailStatusJSON{
		Jail: j.Name, Filter: j.Filter, JournalMatch: nonNil(j.JournalMatch),
		FindTime: j.FindTime, BanTime: j.BanTime, MaxRetry: j.MaxRetry,
		CurrentlyFailed: j.CurrentlyFailed, TotalFailed: j.TotalFailed,
		CurrentlyBanned: j.CurrentlyBanned, TotalBanned: j.TotalBanned,
		Banned: addresses(bans), Reader: reader, Events: e.recent(name),
	}
	if n, after, ok := trustStatus(d, name); ok {
		s.CurrentlyTrusted, s.TrustAfterLogin = &n, &after
	}
	if asJSON {
		return writeJSON(e.stdout, s)
	}
	w := e.stdout
	fmt.Fprintf(w, "%s %s\n", e.bold("Status for the jail:"), s.Jail)
	fmt.Fprintf(w, "|- Filter\n")
	fmt.Fprintf(w, "|  |- Currently failed:\t%d\n", s.CurrentlyFailed)
	fmt.Fprintf(w, "|  |- Total failed:\t%d\n", s.TotalFailed)
	fmt.Fprintf(w, "|  `- Journal matches:\t%s\n", strings.Join(s.JournalMatch, " "))
	fmt.Fprintf(w, "`- Actions\n")
	fmt.Fprintf(w, "   |- Currently banned:\t%d\n", s.CurrentlyBanned)
	fmt.Fprintf(w, "   |- Total banned:\t%d\n", s.TotalBanned)
	fmt.Fprintf(w, "   `- Banned IP list:\t%s\n", e.red(strings.Join(s.Banned, " ")))
	if s.CurrentlyTrusted != nil {
		fmt.Fprintf(w, "Trusted after login: %d (%s)\n", *s.CurrentlyTrusted, trustAfterText(*s.TrustAfterLogin))
	}
	fmt.Fprintf(w, "Reader: %s\n", s.Reader)
	e.printEvents(s.Events)
	return nil
}

// recent returns the last events of jail from the journal; a journal that cannot be read costs a
// warning, not the status.
func (e *env) recent(jail string) []string {
	lines, err := e.events(jail, recentCount)
	if err != nil {
		fmt.Fprintf(e.stderr, "gaoler: warning: cannot read recent events from the journal: %v\n", err)
	}
	return nonNil(lines)
}

func (e *env) printEvents(lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(e.stdout, "\n%s\n", e.bold("Recent events:"))
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
}

func addresses(bans []bus.BanInfo) []string {
	out := make([]string, 0, len(bans))
	for _, b := range bans {
		out = append(out, b.Address)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
