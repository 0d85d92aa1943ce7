package jails

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// ErrUnknownFilter is returned by Builtin for a filter name it does not know.
var ErrUnknownFilter = errors.New("unknown filter")

// ErrUnknownMode is returned by SSHD and Builtin for a mode the filter does not have.
var ErrUnknownMode = errors.New("unknown mode")

// ErrNoHost is the error of a failregex without <HOST>, wrapped in a *RegexError.
var ErrNoHost = errors.New("missing <HOST>")

// RegexError is a pattern of a config-defined filter that NewFilter refused: Key is "failregex" or
// "ignoreregex" and Index the pattern's position in that list (from 0), so that the caller can name
// the file, line and key.
type RegexError struct {
	Key   string
	Index int
	Err   error
}

func (e *RegexError) Error() string { return fmt.Sprintf("%s[%d]: %v", e.Key, e.Index, e.Err) }

// Unwrap returns the underlying error (ErrNoHost or a *syntax.Error).
func (e *RegexError) Unwrap() error { return e.Err }

// Filter turns a journal message into a failure from an address. A Filter is immutable and safe for
// concurrent use.
type Filter struct {
	name  string
	match []string
	rules []string

	sshd *sshdFilter // the built-in sshd filter, or nil

	fail   []hostRegex
	ignore []*regexp.Regexp
}

// hostRegex is a compiled failregex and the indexes of its <HOST> captures.
type hostRegex struct {
	re    *regexp.Regexp
	hosts []int
}

// Builtin returns the built-in filter name in mode ("" is the filter's default mode). Today the only
// one is "sshd"; any other name is ErrUnknownFilter.
func Builtin(name, mode string) (*Filter, error) {
	switch name {
	case "sshd":
		return SSHD(mode)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownFilter, name)
}

// hostPattern is what <HOST> expands to: an IPv4 address, or anything shaped like an IPv6 address
// (including ::ffff:a.b.c.d); netip.ParseAddr has the last word.
const hostPattern = `(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*[0-9A-Fa-f])`

// NewFilter compiles a config-defined filter. Each failregex must contain <HOST> (it may appear more
// than once, as in "by <HOST>|from <HOST>": the first that took part in the match is the address);
// ignoreregex patterns need not. A message is a failure if a failregex matches it, the captured
// address parses, and no ignoreregex matches it. Errors are *RegexError.
func NewFilter(name string, failregex, ignoreregex []string) (*Filter, error) {
	f := &Filter{name: name}
	for i, p := range failregex {
		if !strings.Contains(p, "<HOST>") {
			return nil, &RegexError{Key: "failregex", Index: i, Err: ErrNoHost}
		}
		n := 0
		expanded := strings.ReplaceAll(p, "<HOST>", "\x00")
		var b strings.Builder
		for _, part := range strings.Split(expanded, "\x00") {
			if n > 0 {
				fmt.Fprintf(&b, "(?P<host%d>%s)", n, hostPattern)
			}
			b.WriteString(part)
			n++
		}
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, &RegexError{Key: "failregex", Index: i, Err: err}
		}
		hr := hostRegex{re: re}
		for k := 1; k < n; k++ {
			hr.hosts = append(hr.hosts, re.SubexpIndex(fmt.Sprintf("host%d", k)))
		}
		f.fail = append(f.fail, hr)
		f.rules = append(f.rules, fmt.Sprintf("failregex[%d]", i))
	}
	for i, p := range ignoreregex {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, &RegexError{Key: "ignoreregex", Index: i, Err: err}
		}
		f.ignore = append(f.ignore, re)
	}
	return f, nil
}

// Name returns the filter's name ("sshd", or the [filter.NAME] of a config-defined one).
func (f *Filter) Name() string { return f.name }

// DefaultMatch returns the filter's journal match in journalctl's syntax, one term per element and
// "+" between alternatives. For sshd it selects entries by fields journald sets and a client cannot
// forge: root processes of ssh.service or sshd.service, or root processes named sshd, sshd-session
// (OpenSSH 9.8+) or sshd-auth (OpenSSH 10, which authenticates in a process of its own), or root's entries identified as sshd whose process journald could not look up
// ("_COMM=" holds for an entry without _COMM; see the journal package's Match). Config-defined filters
// have none (nil): their match comes from the config.
func (f *Filter) DefaultMatch() []string {
	return append([]string(nil), f.match...)
}

// Rules returns the names of the filter's rules, in the order Match tries them: the names Match
// reports, for per-rule counts.
func (f *Filter) Rules() []string {
	return append([]string(nil), f.rules...)
}

// Match reports whether message is a failure, from which address (IPv4-mapped IPv6 addresses are
// returned as IPv4, zones dropped) and by which rule. It is Classify for callers that want failures
// only.
func (f *Filter) Match(message string) (host netip.Addr, rule string, ok bool) {
	r := f.Classify(message)
	if r.Kind != Failure {
		return netip.Addr{}, "", false
	}
	return r.Addr, r.Rule, true
}

// Classify reads one message on its own: a Failure, a Login (only the sshd filter reports logins:
// config-defined filters have no pattern for them) or None.
func (f *Filter) Classify(message string) Result {
	if f.sshd != nil {
		return f.sshd.classify(message)
	}
	for i, hr := range f.fail {
		m := hr.re.FindStringSubmatchIndex(message)
		if m == nil {
			continue
		}
		for _, g := range hr.hosts {
			if m[2*g] < 0 {
				continue
			}
			a, ok := parseAddr(message[m[2*g]:m[2*g+1]])
			if !ok {
				break
			}
			for _, ig := range f.ignore {
				if ig.MatchString(message) {
					return Result{}
				}
			}
			return Result{Kind: Failure, Addr: a, Rule: f.rules[i]}
		}
	}
	return Result{}
}

// parseAddr parses an address as sshd and most daemons print it.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}
