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
		for _, b := range bans {
			rows = append(rows, e.banRow(jail, b, now))
		}
	}
	if *asJSON {
		return writeJSON(e.stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "No active bans.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, e.bold(strings.Join([]string{"JAIL", "ADDRESS", "BANNED AT", "EXPIRES AT", "REMAINING", "BANS"}, "\t")))
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", r.Jail, r.Address,
			usecTime(r.BannedAtUsec, e.loc).Format(timeLayout), usecTime(r.ExpiresUsec, e.loc).Format(timeLayout),
			remaining(now, usecTime(r.ExpiresUsec, e.loc)), r.BanCount)
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
