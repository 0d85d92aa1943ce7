package journal

import (
	"errors"
	"fmt"
	"strings"
)

// Match is a parsed journalctl-style match expression: alternatives separated by "+", each a set of
// FIELD=value terms in which terms on the same field are OR'ed and terms on different fields AND'ed,
// as journalctl(1) and sd_journal_add_match(3) define them. The zero Match matches every entry.
type Match struct {
	alts  []conjunction
	terms []string
}

// conjunction is one alternative: every field must have one of its values.
type conjunction []fieldValues

type fieldValues struct {
	field  string
	values []string
}

// ErrMatch is wrapped by every error ParseMatch returns.
var ErrMatch = errors.New("invalid journal match")

// ParseMatch parses journalctl match terms such as
// ["_UID=0", "_COMM=sshd", "_COMM=sshd-session", "+", "_UID=0", "_SYSTEMD_UNIT=ssh.service"].
// A field name is made of upper-case letters, digits and underscores and does not start with a digit;
// the value may be empty. "+" may not start or end the list, nor follow another "+".
func ParseMatch(terms []string) (Match, error) {
	m := Match{terms: append([]string(nil), terms...)}
	var cur conjunction
	for i, t := range terms {
		if t == "+" {
			if len(cur) == 0 {
				return Match{}, fmt.Errorf("%w: term %d: %q must separate two alternatives", ErrMatch, i+1, t)
			}
			m.alts = append(m.alts, cur)
			cur = nil
			continue
		}
		field, value, ok := strings.Cut(t, "=")
		if !ok {
			return Match{}, fmt.Errorf("%w: term %d: %q is not FIELD=value", ErrMatch, i+1, t)
		}
		if !validField(field) {
			return Match{}, fmt.Errorf("%w: term %d: %q is not a journal field name", ErrMatch, i+1, field)
		}
		cur = cur.add(field, value)
	}
	if len(cur) == 0 && len(terms) > 0 {
		return Match{}, fmt.Errorf("%w: a trailing \"+\" must be followed by an alternative", ErrMatch)
	}
	if len(cur) > 0 {
		m.alts = append(m.alts, cur)
	}
	return m, nil
}

func (c conjunction) add(field, value string) conjunction {
	for i := range c {
		if c[i].field == field {
			for _, v := range c[i].values {
				if v == value {
					return c
				}
			}
			c[i].values = append(c[i].values, value)
			return c
		}
	}
	return append(c, fieldValues{field: field, values: []string{value}})
}

// validField reports whether name is a field name journald accepts from a client or sets itself.
func validField(name string) bool {
	if name == "" || len(name) > 64 || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Fields returns the fields the match tests, each once, in the order they first appear.
func (m Match) Fields() []string {
	var out []string
	for _, c := range m.alts {
		for _, fv := range c {
			if !contains(out, fv.field) {
				out = append(out, fv.field)
			}
		}
	}
	return out
}

// Terms returns the terms the match was parsed from.
func (m Match) Terms() []string { return append([]string(nil), m.terms...) }

// String returns the match as journalctl takes it.
func (m Match) String() string { return strings.Join(m.terms, " ") }

// IsZero reports whether the match has no terms and so matches every entry.
func (m Match) IsZero() bool { return len(m.alts) == 0 }

// Satisfied reports whether the entry satisfies the match. The entry must have been read with the
// match's fields (a Reader always reads the fields of its Options.Matches).
func (m Match) Satisfied(e *Entry) bool {
	if len(m.alts) == 0 {
		return true
	}
next:
	for _, c := range m.alts {
		for _, fv := range c {
			if !e.has(fv.field, fv.values) {
				continue next
			}
		}
		return true
	}
	return false
}

// A term with an empty value, such as "_COMM=", holds for an entry that lacks the field (or has it
// empty). journald leaves out _COMM, _EXE, _CMDLINE and _SYSTEMD_UNIT when the sender had exited before
// it could read them from /proc, while _UID (from the socket's credentials) is always there, so a
// trust rule can say "root, identifier sshd, and journald could not tell the process": the entry of a
// short-lived sshd process, which an unprivileged user cannot forge. sd-journal cannot match an absent
// field: SDTerms leaves such a field out of what it gives sd-journal (a wider pre-selection), and
// Satisfied, which reads Field as "" for an absent field, applies it exactly.

// SDTerms returns the terms to give sd-journal (FIELD=value and "+" between alternatives): a
// pre-selection that every entry satisfying the match passes, which Satisfied then decides exactly.
// Of each alternative it keeps one field, the most selective (see preselect): sd-journal intersects
// the entry lists of every field of an alternative, and with the sshd filter's default match that
// intersection (_UID=0 with the unit, the command, the identifier) cost two thirds more CPU than
// reading the same entries through the unit alone. Fields with an empty value in an alternative are
// never given (sd-journal cannot match an absent field). ok is false when an alternative is left
// with no term, i.e. sd-journal must read every entry and Satisfied decide.
func (m Match) SDTerms() (terms []string, ok bool) {
	for i, c := range m.alts {
		if i > 0 {
			terms = append(terms, "+")
		}
		fv, found := preselect(c)
		if !found {
			return nil, false
		}
		for _, v := range fv.values {
			terms = append(terms, fv.field+"="+v)
		}
	}
	return terms, true
}

// selective ranks the fields that name one program or service, most selective first; broad are
// fields that most entries of a host share. preselect picks an alternative's field by them.
var (
	selective = []string{"_SYSTEMD_UNIT", "_SYSTEMD_USER_UNIT", "_EXE", "_COMM", "SYSLOG_IDENTIFIER", "_CMDLINE"}
	broad     = []string{"_UID", "_GID", "_TRANSPORT", "PRIORITY", "SYSLOG_FACILITY", "_BOOT_ID", "_MACHINE_ID",
		"_HOSTNAME", "_CAP_EFFECTIVE", "_SYSTEMD_SLICE", "_SYSTEMD_OWNER_UID", "_AUDIT_LOGINUID", "_AUDIT_SESSION",
		"_SELINUX_CONTEXT", "_NAMESPACE", "_RUNTIME_SCOPE"}
)

// preselect returns the field of c that sd-journal should select by: the first of selective that c
// has, else its first field that is not broad, else its first field; never one with an empty value.
func preselect(c conjunction) (fieldValues, bool) {
	usable := func(fv fieldValues) bool { return !contains(fv.values, "") }
	for _, f := range selective {
		for _, fv := range c {
			if fv.field == f && usable(fv) {
				return fv, true
			}
		}
	}
	for _, fv := range c {
		if usable(fv) && !contains(broad, fv.field) {
			return fv, true
		}
	}
	for _, fv := range c {
		if usable(fv) {
			return fv, true
		}
	}
	return fieldValues{}, false
}

// addTo adds the match to sd-journal as one or more alternatives (sd_journal_add_disjunction after
// each), so that several matches added in turn are OR'ed. The caller has checked SDTerms' ok. keep,
// when not nil, leaves out the terms it refuses (values no journal file holds, see sdSource.prune),
// and an alternative whose terms are all left out; it returns how many terms it added.
func (m Match) addTo(j matcher, keep func(term string) bool) (int, error) {
	terms, _ := m.SDTerms()
	added, inAlt := 0, 0
	for _, t := range append(terms, "+") {
		if t == "+" {
			if inAlt > 0 {
				if err := j.addDisjunction(); err != nil {
					return added, err
				}
			}
			inAlt = 0
			continue
		}
		if keep != nil && !keep(t) {
			continue
		}
		if err := j.addMatch(t); err != nil {
			return added, err
		}
		added++
		inAlt++
	}
	return added, nil
}

type matcher interface {
	addMatch(term string) error
	addDisjunction() error
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
