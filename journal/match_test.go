package journal

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseMatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		terms  []string
		fields []string
		err    bool
	}{
		{"sshd default", []string{"_UID=0", "_COMM=sshd", "_COMM=sshd-session", "+", "_UID=0", "_SYSTEMD_UNIT=ssh.service"},
			[]string{"_UID", "_COMM", "_SYSTEMD_UNIT"}, false},
		{"empty", nil, nil, false},
		{"empty value", []string{"FOO="}, []string{"FOO"}, false},
		{"no equals", []string{"_COMM"}, nil, true},
		{"lower case", []string{"_comm=sshd"}, nil, true},
		{"digit first", []string{"1A=x"}, nil, true},
		{"leading plus", []string{"+", "_UID=0"}, nil, true},
		{"trailing plus", []string{"_UID=0", "+"}, nil, true},
		{"double plus", []string{"_UID=0", "+", "+", "_UID=1"}, nil, true},
		{"path", []string{"/usr/sbin/sshd"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMatch(tc.terms)
			if tc.err {
				if !errors.Is(err, ErrMatch) {
					t.Fatalf("err = %v, want ErrMatch", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Fields(); !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("Fields() = %q, want %q", got, tc.fields)
			}
		})
	}
}

func TestSatisfied(t *testing.T) {
	m, err := ParseMatch([]string{"_UID=0", "_COMM=sshd", "_COMM=sshd-session", "+", "_UID=0", "_SYSTEMD_UNIT=ssh.service"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		fields map[string]string
		want   bool
	}{
		{"sshd as root", map[string]string{"_UID": "0", "_COMM": "sshd"}, true},
		{"sshd-session", map[string]string{"_UID": "0", "_COMM": "sshd-session"}, true},
		{"unit", map[string]string{"_UID": "0", "_COMM": "sshd-auth", "_SYSTEMD_UNIT": "ssh.service"}, true},
		{"sshd not root", map[string]string{"_UID": "1000", "_COMM": "sshd"}, false},
		{"logger -t sshd", map[string]string{"_UID": "1000", "_COMM": "logger", "SYSLOG_IDENTIFIER": "sshd"}, false},
		{"other unit", map[string]string{"_UID": "0", "_SYSTEMD_UNIT": "cron.service"}, false},
		{"no uid", map[string]string{"_COMM": "sshd"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.Satisfied(NewEntry("c", 1, "msg", tc.fields)); got != tc.want {
				t.Errorf("Satisfied = %v, want %v", got, tc.want)
			}
		})
	}
	if !(Match{}).Satisfied(NewEntry("c", 1, "m", nil)) {
		t.Error("the zero Match must match every entry")
	}
}

func TestAddToSdJournal(t *testing.T) {
	m, _ := ParseMatch([]string{"_UID=0", "_COMM=sshd", "_COMM=sshd-session", "+", "_UID=0", "_SYSTEMD_UNIT=ssh.service"})
	var rec recorder
	if _, err := m.addTo(&rec, nil); err != nil {
		t.Fatal(err)
	}
	// Each alternative pre-selected by its most selective field; _UID=0 is checked by Satisfied.
	want := []string{"_COMM=sshd", "_COMM=sshd-session", "|", "_SYSTEMD_UNIT=ssh.service", "|"}
	if !reflect.DeepEqual([]string(rec), want) {
		t.Errorf("calls = %q, want %q", rec, want)
	}
}

// TestPreselectKeepsTrust: an entry that passes sd-journal's wider pre-selection but not the whole
// match (a user's forged SYSLOG_IDENTIFIER=sshd, a root process of another unit) is not Satisfied.
func TestPreselectKeepsTrust(t *testing.T) {
	m, _ := ParseMatch([]string{"_UID=0", "_SYSTEMD_UNIT=ssh.service", "+", "_UID=0", "_COMM=sshd", "+",
		"_UID=0", "_COMM=", "SYSLOG_IDENTIFIER=sshd"})
	terms, _ := m.SDTerms()
	if want := []string{"_SYSTEMD_UNIT=ssh.service", "+", "_COMM=sshd", "+", "SYSLOG_IDENTIFIER=sshd"}; !reflect.DeepEqual(terms, want) {
		t.Fatalf("SDTerms = %q, want %q", terms, want)
	}
	for _, f := range []map[string]string{
		{"_UID": "1000", "_COMM": "logger", "SYSLOG_IDENTIFIER": "sshd"}, // logger -t sshd by a user
		{"_UID": "1000", "_COMM": "sshd"},                                // a user's program named sshd
		{"_UID": "1000", "_SYSTEMD_UNIT": "ssh.service"},                 // not root
		{"_UID": "1000", "SYSLOG_IDENTIFIER": "sshd"},                    // a user's, metadata lost
	} {
		if m.Satisfied(NewEntry("c", 1, "Failed password for root from 192.0.2.1 port 22 ssh2", f)) {
			t.Errorf("forged entry %v satisfies the match", f)
		}
	}
}

// TestAbsentField: "_COMM=" holds for an entry without _COMM (journald could not read the sender's
// metadata), not for one whose _COMM is set; sd-journal is given the alternative without it.
func TestAbsentField(t *testing.T) {
	m, err := ParseMatch([]string{"_UID=0", "_COMM=sshd", "+", "_UID=0", "_COMM=", "SYSLOG_IDENTIFIER=sshd"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fields map[string]string
		want   bool
	}{
		{map[string]string{"_UID": "0", "_COMM": "sshd"}, true},
		{map[string]string{"_UID": "0", "SYSLOG_IDENTIFIER": "sshd"}, true},                     // metadata lost
		{map[string]string{"_UID": "0", "_COMM": "logger", "SYSLOG_IDENTIFIER": "sshd"}, false}, // root's logger -t sshd
		{map[string]string{"_UID": "1000", "SYSLOG_IDENTIFIER": "sshd"}, false},                 // a user's
		{map[string]string{"_UID": "0"}, false},
	} {
		if got := m.Satisfied(NewEntry("c", 1, "m", c.fields)); got != c.want {
			t.Errorf("Satisfied(%v) = %v, want %v", c.fields, got, c.want)
		}
	}
	terms, ok := m.SDTerms()
	// One field of each alternative pre-selects (the broad _UID is left to Satisfied).
	want := []string{"_COMM=sshd", "+", "SYSLOG_IDENTIFIER=sshd"}
	if !ok || !reflect.DeepEqual(terms, want) {
		t.Errorf("SDTerms = %q %v, want %q", terms, ok, want)
	}
	var rec recorder
	if _, err := m.addTo(&rec, nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"_COMM=sshd", "|", "SYSLOG_IDENTIFIER=sshd", "|"}; !reflect.DeepEqual([]string(rec), want) {
		t.Errorf("addTo calls = %q, want %q", rec, want)
	}
	only, _ := ParseMatch([]string{"_UID=0", "+", "_COMM="})
	if _, ok := only.SDTerms(); ok {
		t.Errorf("SDTerms of a match with an alternative of absent fields only: ok, want not ok (read everything)")
	}
}

type recorder []string

func (r *recorder) addMatch(term string) error { *r = append(*r, term); return nil }
func (r *recorder) addDisjunction() error      { *r = append(*r, "|"); return nil }

func FuzzParseMatch(f *testing.F) {
	f.Add("_UID=0 _COMM=sshd + _SYSTEMD_UNIT=ssh.service")
	f.Fuzz(func(t *testing.T, s string) {
		var terms []string
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == ' ' {
				terms = append(terms, s[start:i])
				start = i + 1
			}
		}
		m, err := ParseMatch(terms)
		if err != nil {
			return
		}
		e := NewEntry("c", 1, "m", map[string]string{"_UID": "0"})
		_ = m.Satisfied(e)
		_ = m.Fields()
	})
}
