package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gaoler/gaoler/bus"
)

// trustAPI is what the trust commands need of the bus API, beside api; *bus.Client implements it.
type trustAPI interface {
	Trust(jail, address string, seconds uint64) error
	Untrust(jail, address string) error
	ListTrusted(jail string) ([]bus.TrustInfo, error)
	TrustOf(jail, address string) (bus.TrustInfo, bool, error)
	TrustAfterLogin(jail string) (afterSeconds uint64, trusted uint32, err error)
}

var _ trustAPI = (*bus.Client)(nil)

// trustOf returns d's trust API.
func trustOf(d api) (trustAPI, error) {
	t, ok := d.(trustAPI)
	if !ok {
		return nil, errors.New("this client cannot reach the trust after login")
	}
	return t, nil
}

// explainTrust is explain, for the trust commands.
func explainTrust(err error, jail, address string) error {
	switch {
	case errors.Is(err, bus.ErrNotTrusted):
		return fmt.Errorf("%s is not trusted in jail %s", address, jail)
	case errors.Is(err, bus.ErrAccessDenied):
		return errors.New("permission denied: only root may trust or untrust an address")
	}
	return explain(err, jail, address)
}

// checkSingleAddress checks an address for trust and untrust, which take one address, not a prefix.
func checkSingleAddress(s string) error {
	if _, err := netip.ParseAddr(s); err != nil {
		return usageErrorf("invalid address %q: trust takes one IP address, not a prefix or a name", s)
	}
	return nil
}

// trustTarget parses the command line of trust and untrust (JAIL ADDRESS, and fs's flags, which check
// validates when not nil) and connects to the daemon's trust API; the caller closes the returned api.
func (e *env) trustTarget(fs *flag.FlagSet, args []string, synopsis string, check func() error) (jail, address string, c api, t trustAPI, err error) {
	if args, err = parseArgs(fs, args); err != nil {
		return
	}
	if err = wantArgs(args, 2, 2, synopsis); err != nil {
		return
	}
	jail, address = args[0], args[1]
	if err = checkSingleAddress(address); err != nil {
		return
	}
	if check != nil {
		if err = check(); err != nil {
			return
		}
	}
	if c, err = e.connect(); err != nil {
		return
	}
	if t, err = trustOf(c); err != nil {
		c.Close()
	}
	return
}

// trust is `gaoler trust JAIL ADDRESS [--for DURATION]`.
func (e *env) trust(args []string) error {
	fs := flag.NewFlagSet("trust", flag.ContinueOnError)
	forFlag := fs.String("for", "", "trust for this long instead of the jail's trust_after_login")
	var d time.Duration
	jail, address, c, t, err := e.trustTarget(fs, args, "trust JAIL ADDRESS [--for DURATION]", func() (err error) {
		if *forFlag != "" {
			if d, err = parseDuration(*forFlag); err != nil {
				return usageErrorf("trust: --for: %v", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := t.Trust(jail, address, uint64(d/time.Second)); err != nil {
		return explainTrust(err, jail, address)
	}
	tr, ok, err := t.TrustOf(jail, address)
	if err != nil || !ok {
		fmt.Fprintf(e.stdout, "Trusted %s in jail %s\n", address, jail)
		return nil
	}
	fmt.Fprintf(e.stdout, "Trusted %s in jail %s until %s: its failures do not count until then\n",
		address, jail, usecTime(tr.UntilUsec, e.loc).Format(timeLayout))
	return nil
}

// untrust is `gaoler untrust JAIL ADDRESS`.
func (e *env) untrust(args []string) error {
	jail, address, c, t, err := e.trustTarget(flag.NewFlagSet("untrust", flag.ContinueOnError), args, "untrust JAIL ADDRESS", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := t.Untrust(jail, address); err != nil {
		return explainTrust(err, jail, address)
	}
	fmt.Fprintf(e.stdout, "Untrusted %s in jail %s: its failures count again from now\n", address, jail)
	return nil
}

// trustJSON is one trusted address in `gaoler trusted --json`.
type trustJSON struct {
	Jail      string `json:"jail"`
	Address   string `json:"address"`
	Until     string `json:"until"` // RFC 3339
	At        string `json:"at"`    // the latest login that gave or extended it
	User      string `json:"user"`
	Method    string `json:"method"`
	Logins    uint32 `json:"logins"`
	UntilUsec uint64 `json:"until_usec"`
	AtUsec    uint64 `json:"at_usec"`
}

// trusted is `gaoler trusted [JAIL] [--json]`.
func (e *env) trusted(args []string) error {
	fs := flag.NewFlagSet("trusted", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(args, 0, 1, "trusted [JAIL] [--json]"); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := trustOf(c)
	if err != nil {
		return err
	}
	jails := args
	if len(jails) == 0 {
		if jails, err = c.Jails(); err != nil {
			return explain(err, "", "")
		}
	}
	rows := []trustJSON{}
	for _, jail := range jails {
		list, err := t.ListTrusted(jail)
		if err != nil {
			return explainTrust(err, jail, "")
		}
		for _, tr := range list {
			rows = append(rows, e.trustRow(jail, tr))
		}
	}
	if *asJSON {
		return writeJSON(e.stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "No address is trusted after a login.")
		return nil
	}
	now := e.now()
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, e.bold(strings.Join([]string{"JAIL", "ADDRESS", "UNTIL", "REMAINING", "BY", "LAST LOGIN", "LOGINS"}, "\t")))
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.Jail, r.Address,
			usecTime(r.UntilUsec, e.loc).Format(timeLayout), remaining(now, usecTime(r.UntilUsec, e.loc)),
			trustHow(r.User, r.Method), usecTime(r.AtUsec, e.loc).Format(timeLayout), r.Logins)
	}
	return tw.Flush()
}

func (e *env) trustRow(jail string, t bus.TrustInfo) trustJSON {
	return trustJSON{
		Jail: jail, Address: t.Address,
		Until: usecTime(t.UntilUsec, e.loc).Format(time.RFC3339),
		At:    usecTime(t.AtUsec, e.loc).Format(time.RFC3339),
		User:  t.User, Method: t.Method, Logins: t.Logins,
		UntilUsec: t.UntilUsec, AtUsec: t.AtUsec,
	}
}

// trustHow says how a trust was earned: "login of admin by publickey", "logind session of admin",
// "gaoler trust".
func trustHow(user, method string) string {
	switch method {
	case "manual":
		return "gaoler trust"
	case "logind":
		return "logind session of " + user
	}
	s := "login"
	if user != "" {
		s += " of " + user
	}
	if method != "" {
		s += " by " + method
	}
	return s
}

// trustWhy describes the trusts of address in jails for `gaoler why`: one line per jail that trusts
// it, such as "trusted in jail sshd until 2026-12-10 09:00:00, login of admin by publickey at
// 2026-12-03 09:00:00 (2 logins)". A daemon without the trust API gives none.
func (e *env) trustWhy(d api, jails []string, address string) ([]string, error) {
	t, err := trustOf(d)
	if err != nil {
		return nil, nil
	}
	var lines []string
	for _, jail := range jails {
		tr, ok, err := t.TrustOf(jail, address)
		if err != nil {
			return nil, explainTrust(err, jail, address)
		}
		if ok {
			lines = append(lines, e.trustLine(jail, tr))
		}
	}
	return lines, nil
}

// trustLine is one jail's trust of an address, for people.
func (e *env) trustLine(jail string, tr bus.TrustInfo) string {
	s := fmt.Sprintf("trusted in jail %s until %s, %s at %s", jail, usecTime(tr.UntilUsec, e.loc).Format(timeLayout),
		trustHow(tr.User, tr.Method), usecTime(tr.AtUsec, e.loc).Format(timeLayout))
	if tr.Logins > 1 {
		s += fmt.Sprintf(" (%d logins)", tr.Logins)
	}
	return s
}

// trustStatus returns how many addresses the jail trusts and its trust_after_login in seconds, for
// `gaoler status JAIL`; ok is false when the daemon cannot say.
func trustStatus(d api, jail string) (trusted uint32, after uint64, ok bool) {
	t, err := trustOf(d)
	if err != nil {
		return 0, 0, false
	}
	after, trusted, err = t.TrustAfterLogin(jail)
	if err != nil {
		return 0, 0, false
	}
	return trusted, after, true
}

// trustAfterText describes trust_after_login for status: "for 7d after a login", or "off".
func trustAfterText(seconds uint64) string {
	if seconds == 0 {
		return "trust_after_login off"
	}
	return "for " + humanDuration(time.Duration(seconds)*time.Second) + " after a login"
}
