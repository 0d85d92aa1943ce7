package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gaoler/gaoler/bus"
)

// whyAPI is what `gaoler why` needs of the bus API, beside api; *bus.Client implements it.
type whyAPI interface {
	Why(address, jail string) (bus.WhyReply, error)
}

var _ whyAPI = (*bus.Client)(nil)

// why is `gaoler why ADDRESS [--jail JAIL] [--json]`: the address's bans, running or recent, with the
// rule, the origin and the journal entries that made each; and why the other jails do not ban it.
func (e *env) why(args []string) error {
	fs := flag.NewFlagSet("why", flag.ContinueOnError)
	jail := fs.String("jail", "", "only this jail")
	asJSON := fs.Bool("json", false, "print JSON")
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(args, 1, 1, "why ADDRESS [--jail JAIL] [--json]"); err != nil {
		return err
	}
	address := args[0]
	if _, err := netip.ParseAddr(address); err != nil {
		return usageErrorf("invalid address %q: why takes one IP address, such as 192.0.2.7 or 2001:db8::1", address)
	}
	d, err := e.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	w, ok := d.(whyAPI)
	if !ok {
		return errors.New("this client cannot ask why")
	}
	r, err := w.Why(address, *jail)
	if err != nil {
		if errors.Is(err, bus.ErrAccessDenied) {
			return errors.New("permission denied: gaoler why shows journal entries, which only root may read")
		}
		return explain(err, *jail, address)
	}
	if *asJSON {
		return writeJSON(e.stdout, r)
	}
	e.printWhy(r)
	return nil
}

func (e *env) printWhy(r bus.WhyReply) {
	now := e.now()
	stamp := func(t time.Time) string { return t.In(e.loc).Format(timeLayout) }
	if len(r.Bans) == 0 && len(r.NotBanned) == 0 {
		fmt.Fprintf(e.stdout, "%s is not banned, and has no recent ban.\n", r.Address)
		return
	}
	for i, b := range r.Bans {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		what := r.Address
		if b.Prefix != "" && b.Prefix != r.Address {
			what = fmt.Sprintf("%s (in %s)", r.Address, b.Prefix)
		}
		if b.Active {
			fmt.Fprintf(e.stdout, "%s is %s in jail %s until %s (%s), %s.\n", what, e.red("banned"), b.Jail,
				stamp(b.Expires), remaining(now, b.Expires), banNumber(b.Count))
		} else {
			end := "ended"
			if !b.Ended.IsZero() {
				end = "ended " + stamp(b.Ended)
			}
			if b.EndReason != "" {
				end += ", " + b.EndReason
			}
			fmt.Fprintf(e.stdout, "%s was banned in jail %s until %s (%s), %s.\n", what, b.Jail, stamp(b.Expires), end, banNumber(b.Count))
		}
		fmt.Fprintf(e.stdout, "  Banned at: %s\n", stamp(b.BannedAt))
		fmt.Fprintf(e.stdout, "  Origin:    %s\n", whyOrigin(b))
		if b.Rule != "" {
			fmt.Fprintf(e.stdout, "  Rule:      %s\n", b.Rule)
		}
		if len(b.Entries) == 0 {
			continue
		}
		fmt.Fprintf(e.stdout, "  Journal entries (%d):\n", len(b.Entries))
		for _, l := range b.Entries {
			fmt.Fprintf(e.stdout, "    %s  %s\n", stamp(l.Time), printable(l.Message))
		}
	}
	if len(r.Bans) > 0 && len(r.NotBanned) > 0 {
		fmt.Fprintln(e.stdout)
	}
	for _, n := range r.NotBanned {
		fmt.Fprintf(e.stdout, "%s is not banned in jail %s: %s.\n", r.Address, n.Jail, e.whyNot(n))
	}
}

// whyNot says why a jail does not ban the address.
func (e *env) whyNot(n bus.WhyNot) string {
	stamp := func(t time.Time) string { return t.In(e.loc).Format(timeLayout) }
	var why []string
	if n.Ignored != "" {
		why = append(why, "ignored ("+n.Ignored+")")
	}
	if t := n.Trusted; t != nil {
		why = append(why, fmt.Sprintf("trusted until %s (%s at %s)", stamp(t.Until), trustHow(t.User, t.Method), stamp(t.At)))
	}
	if len(why) == 0 {
		return "it has not failed enough (or at all)"
	}
	return strings.Join(why, "; ")
}

// whyOrigin says who decided a ban.
func whyOrigin(b bus.WhyBan) string {
	switch b.Origin {
	case "filter":
		return "the jail's filter, on this host's journal"
	case "manual":
		if b.UID != nil {
			return fmt.Sprintf("a manual ban by uid %d", *b.UID)
		}
		return "a manual ban"
	case "peer":
		return "fleet peer " + b.Peer
	case "restored":
		return "restored from gaolerd's state"
	}
	return b.Origin
}

func banNumber(n int) string {
	if n <= 1 {
		return "its first ban"
	}
	return fmt.Sprintf("ban number %d", n)
}

// printable keeps a journal message on one line of a terminal: control characters become '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
