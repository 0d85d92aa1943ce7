package config

import (
	"errors"
	"regexp"
	"strings"

	"github.com/gaoler/gaoler/jails"
)

// userFilter is a compiled [filter.NAME] table.
type userFilter struct {
	FilterDef
	path []string // where its journal_match is, for warnings
}

// journalMatch checks journalctl-style match terms: FIELD=value, with "+" between alternatives.
func (c *checker) journalMatch(v any, path []string) ([]string, bool) {
	terms, ok := c.strs(v, path, nil)
	if !ok {
		return nil, false
	}
	good := true
	for i, t := range terms {
		if t == "+" {
			if i == 0 || i == len(terms)-1 || terms[i-1] == "+" {
				c.errorf(path, i, "\"+\" must stand between two groups of matches")
				good = false
			}
			continue
		}
		field, _, found := strings.Cut(t, "=")
		if !found || !fieldRE.MatchString(field) {
			c.errorf(path, i, "bad match %q: want FIELD=value (FIELD in upper case, e.g. \"_SYSTEMD_UNIT=nginx.service\") or \"+\"", t)
			good = false
		}
	}
	return terms, good
}

// filter compiles a [filter.NAME] table.
func (c *checker) filter(t map[string]any, path []string, name string) *userFilter {
	c.known(t, path, filterKeys...)
	key := func(k string) []string { return append(path[:len(path):len(path)], k) }
	f := &userFilter{FilterDef: FilterDef{Name: name}, path: key("journal_match")}
	good := true
	if v, ok := t["journal_match"]; ok {
		f.JournalMatch, ok = c.journalMatch(v, key("journal_match"))
		good = good && ok
	}
	var fail, ignore []string
	if v, ok := t["failregex"]; ok {
		fail, ok = c.regexes(v, key("failregex"), true)
		good = good && ok
		if ok && len(fail) == 0 {
			c.errorf(key("failregex"), -1, "is empty: a filter needs at least one pattern")
			good = false
		}
	} else {
		c.errorf(path, -1, "failregex is missing: a filter needs at least one pattern")
		good = false
	}
	if v, ok := t["ignoreregex"]; ok {
		ignore, ok = c.regexes(v, key("ignoreregex"), false)
		good = good && ok
	}
	if !good {
		return nil
	}
	compiled, err := jails.NewFilter(name, fail, ignore)
	if err != nil {
		var re *jails.RegexError
		if errors.As(err, &re) {
			c.errorf(key(re.Key), re.Index, "%v", re.Err)
		} else {
			c.errorf(path, -1, "%v", err)
		}
		return nil
	}
	f.Filter, f.FailRegex, f.IgnoreRegex = compiled, fail, ignore
	return f
}

// hostPlaceholder stands in for <HOST> when checking that a pattern compiles; package jails expands
// <HOST> to the real address capture.
const hostPlaceholder = `(?:[0-9A-Fa-f:.]+)`

// regexes checks patterns one by one, so that every bad one is reported, not just the first.
func (c *checker) regexes(v any, path []string, needHost bool) ([]string, bool) {
	return c.strs(v, path, func(i int, s string) bool {
		if needHost && !strings.Contains(s, "<HOST>") {
			c.errorf(path, i, "no <HOST> in the pattern: a failure must say whom to ban")
			return false
		}
		if _, err := regexp.Compile(strings.ReplaceAll(s, "<HOST>", hostPlaceholder)); err != nil {
			c.errorf(path, i, "bad regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			return false
		}
		return true
	})
}

// Journal fields that only journald sets. strongFields identify the sender: no unprivileged
// process can claim them. weakFields are journald's too but chosen by the sending process itself
// (its name, its command line), so any local user can match them by running a program so named.
var (
	strongFields = []string{"_SYSTEMD_UNIT", "_SYSTEMD_CGROUP", "_SYSTEMD_SLICE", "_EXE", "_UID", "_GID", "_SYSTEMD_INVOCATION_ID"}
	weakFields   = []string{"_COMM", "_CMDLINE", "_PID"}
)

// trust warns when some alternative of a match could be satisfied by an entry any local user can
// write: then such a user could have any address banned.
func (c *checker) trust(match []string, path []string) {
	for _, alt := range splitAlternatives(match) {
		strong, weak := false, ""
		for _, t := range alt {
			field, value, _ := strings.Cut(t, "=")
			if value == "" {
				continue // FIELD= asks for the field's absence, which anyone's entry can show
			}
			if contains(strongFields, field) {
				strong = true
			} else if contains(weakFields, field) && weak == "" {
				weak = field
			}
		}
		switch {
		case strong:
		case weak != "":
			c.warnf(path, "the match %q trusts only %s, which the sending process chooses: any local user can run a program by that name and log forged failures, getting any address banned; add _UID=0 or match _SYSTEMD_UNIT", strings.Join(alt, " "), weak)
		default:
			c.warnf(path, "the match %q rests only on fields a client sets (SYSLOG_IDENTIFIER and the like): any local user can log forged failures (logger -t) and get any address banned; match trusted fields such as _SYSTEMD_UNIT, _EXE or _UID", strings.Join(alt, " "))
		}
	}
}

// splitAlternatives splits journalctl-style terms at "+".
func splitAlternatives(terms []string) [][]string {
	var out [][]string
	var cur []string
	for _, t := range terms {
		if t == "+" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, t)
	}
	return append(out, cur)
}
