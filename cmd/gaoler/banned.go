package main

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gaoler/gaoler/bus"
)

// banJSON is one ban in `gaoler banned --json`.
type banJSON struct {
	Jail             string `json:"jail"`
	Address          string `json:"address"`
	BannedAt         string `json:"banned_at"` // RFC 3339
	ExpiresAt        string `json:"expires_at"`
	RemainingSeconds int64  `json:"remaining_seconds"`
	BanCount         uint32 `json:"ban_count"`
	BannedAtUsec     uint64 `json:"banned_at_usec"`
	ExpiresUsec      uint64 `json:"expires_usec"`
	// Origin is who made the ban ("filter", "manual", "peer", "restored"), Peer the fleet peer's name,
	// UID the bus caller's uid of a manual ban, Rule the filter rule of a filter's ban; absent from a
	// daemon that cannot tell.
	Origin string  `json:"origin,omitempty"`
	Peer   string  `json:"peer,omitempty"`
	UID    *uint32 `json:"uid,omitempty"`
	Rule   string  `json:"rule,omitempty"`
}

// banned is `gaoler banned [JAIL] [--json]`.
func (e *env) banned(args []string) error {
	fs := flag.NewFlagSet("banned", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(args, 0, 1, "banned [JAIL] [--json]"); err != nil {
		return err
	}
	d, err := e.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	jails := args
	if len(jails) == 0 {
		if jails, err = d.Jails(); err != nil {
			return explain(err, "", "")
		}
	}
	now := e.now()
	rows := []banJSON{}
	for _, jail := range jails {
		bans, err := d.ListBans(jail)
		if err != nil {
			return explain(err, jail, "")
		}
		origins := banOrigins(d, jail)
		for _, b := range bans {
			r := e.banRow(jail, b, now)
			if o, ok := origins[b.Address]; ok {
				r.Origin, r.Peer, r.Rule, r.UID = o.Origin, o.Peer, o.Rule, o.UID
			}
			rows = append(rows, r)
		}
	}
	if *asJSON {
		return writeJSON(e.stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "No active bans.")
		return nil
	}
	withOrigin := false
	for _, r := range rows {
		withOrigin = withOrigin || r.Origin != ""
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	head := []string{"JAIL", "ADDRESS", "BANNED AT", "EXPIRES AT", "REMAINING", "BANS"}
	if withOrigin {
		head = append(head, "ORIGIN")
	}
	fmt.Fprintln(tw, e.bold(strings.Join(head, "\t")))
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d", r.Jail, r.Address,
			usecTime(r.BannedAtUsec, e.loc).Format(timeLayout), usecTime(r.ExpiresUsec, e.loc).Format(timeLayout),
			remaining(now, usecTime(r.ExpiresUsec, e.loc)), r.BanCount)
		if withOrigin {
			fmt.Fprintf(tw, "\t%s", originText(r.Origin, r.Peer, r.UID))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func (e *env) banRow(jail string, b bus.BanInfo, now time.Time) banJSON {
	expires := usecTime(b.ExpiresUsec, e.loc)
	left := expires.Sub(now).Round(time.Second)
	if left < 0 {
		left = 0
	}
	return banJSON{
		Jail: jail, Address: b.Address,
		BannedAt:         usecTime(b.BannedAtUsec, e.loc).Format(time.RFC3339),
		ExpiresAt:        expires.Format(time.RFC3339),
		RemainingSeconds: int64(left / time.Second),
		BanCount:         b.BanCount,
		BannedAtUsec:     b.BannedAtUsec,
		ExpiresUsec:      b.ExpiresUsec,
	}
}
