package main

import (
	"flag"
	"fmt"
	"net/netip"
	"time"

	"github.com/gaoler/gaoler/bus"
)

// checkAddress refuses, before any bus call, what is not an IP address or prefix.
func checkAddress(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	return usageErrorf("invalid address %q: want an IP address or prefix such as 192.0.2.7 or 2001:db8::/64", s)
}

// ban is `gaoler ban JAIL ADDRESS [--for DURATION]`.
func (e *env) ban(args []string) error {
	fs := flag.NewFlagSet("ban", flag.ContinueOnError)
	forFlag := fs.String("for", "", "ban for this long instead of the jail's bantime")
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(args, 2, 2, "ban JAIL ADDRESS [--for DURATION]"); err != nil {
		return err
	}
	jail, address := args[0], args[1]
	if err := checkAddress(address); err != nil {
		return err
	}
	var d time.Duration
	if *forFlag != "" {
		if d, err = parseDuration(*forFlag); err != nil {
			return usageErrorf("ban: --for: %v", err)
		}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	if d == 0 {
		j, err := c.Jail(jail)
		if err != nil {
			return explain(err, jail, address)
		}
		d = time.Duration(j.BanTime) * time.Second
	}
	overridden, _ := e.trustWhy(c, []string{jail}, address)
	start := e.now()
	b, err := c.Ban(jail, address, uint64(d/time.Second))
	if err != nil {
		return explain(err, jail, address)
	}
	e.printBan(address, jail, d, start, b)
	for _, line := range overridden {
		fmt.Fprintf(e.stdout, "Note: %s was %s; the manual ban overrides that trust and ends it\n", address, line)
	}
	return nil
}

// printBan says what a ban of address put in the kernel: the canonical prefix the daemon banned, when
// it is not address as typed (::ffff:192.0.2.7 is banned as 192.0.2.7, an IPv6 address as its /64 with
// ipv6_prefix = 64), and the wider running ban that already covered it, if one did.
func (e *env) printBan(address, jail string, d time.Duration, start time.Time, b bus.BanInfo) {
	what := asCanonical(address, b.Address)
	if b.BannedAtUsec != 0 && usecTime(b.BannedAtUsec, e.loc).Before(start.Add(-2*time.Second)) {
		// Not banned now: a running ban of a wider prefix holds it already.
		fmt.Fprintf(e.stdout, "%s is already banned as %s in jail %s until %s (ban #%d)\n", address, b.Address, jail,
			usecTime(b.ExpiresUsec, e.loc).Format(timeLayout), b.BanCount)
		return
	}
	fmt.Fprintf(e.stdout, "Banned %s in jail %s for %s\n", what, jail, humanDuration(d))
}

// unban is `gaoler unban JAIL ADDRESS` and `gaoler unban --all [JAIL]`.
func (e *env) unban(args []string) error {
	fs := flag.NewFlagSet("unban", flag.ContinueOnError)
	all := fs.Bool("all", false, "lift every ban")
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *all {
		if err := wantArgs(args, 0, 1, "unban --all [JAIL]"); err != nil {
			return err
		}
		return e.unbanAll(args)
	}
	if err := wantArgs(args, 2, 2, "unban JAIL ADDRESS, or gaoler unban --all [JAIL]"); err != nil {
		return err
	}
	jail, address := args[0], args[1]
	if err := checkAddress(address); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := c.Unban(jail, address)
	if err != nil {
		return explain(err, jail, address)
	}
	fmt.Fprintf(e.stdout, "Unbanned %s in jail %s\n", asCanonical(address, b.Address), jail)
	return nil
}

// asCanonical names what a ban or an unban of address put in or took out of the kernel: address as
// typed, and the canonical prefix when it differs (::ffff:192.0.2.7 and 192.0.2.7/32 are 192.0.2.7;
// an unban of an address inside a running /64 ban lifts the /64). An older daemon, which does not say,
// gives "".
func asCanonical(address, canonical string) string {
	if canonical == "" || canonical == address {
		return address
	}
	return address + " as " + canonical
}

func (e *env) unbanAll(args []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	jails := args
	if len(jails) == 0 {
		if jails, err = c.Jails(); err != nil {
			return explain(err, "", "")
		}
	}
	var total uint32
	for _, jail := range jails {
		n, err := c.UnbanAll(jail)
		if err != nil {
			return explain(err, jail, "")
		}
		total += n
	}
	where := "every jail"
	if len(args) == 1 {
		where = "jail " + args[0]
	}
	noun := "addresses"
	if total == 1 {
		noun = "address"
	}
	fmt.Fprintf(e.stdout, "Unbanned %d %s in %s\n", total, noun, where)
	return nil
}

// reload is `gaoler reload`.
func (e *env) reload(args []string) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(args, 0, 0, "reload"); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Reload(); err != nil {
		return explain(err, "", "")
	}
	fmt.Fprintln(e.stdout, "Reloaded")
	return nil
}
