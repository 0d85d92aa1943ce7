package jails

import (
	"net/netip"
	"testing"

	"github.com/gaoler/gaoler/events"
)

func TestSSHDClassifyLogins(t *testing.T) {
	f, _ := SSHD(ModeAggressive)
	for _, c := range []struct {
		name, msg string
		want      Result
	}{
		{"password", "Accepted password for rda from 192.0.2.113 port 52100 ssh2",
			Result{Kind: Login, Addr: netip.MustParseAddr("192.0.2.113"), Rule: RuleAccepted, User: "rda", Method: "password"}},
		{"publickey", "Accepted publickey for git from 2001:db8::1 port 57904 ssh2: ED25519 SHA256:abc",
			Result{Kind: Login, Addr: netip.MustParseAddr("2001:db8::1"), Rule: RuleAccepted, User: "git", Method: "publickey"}},
		{"certificate", "Accepted publickey for git from ::ffff:192.0.2.2 port 5 ssh2: ED25519-CERT SHA256:a ID x from 198.51.100.1 port 1 ssh2 (serial 1) CA ED25519 SHA256:b",
			Result{Kind: Login, Addr: netip.MustParseAddr("192.0.2.2"), Rule: RuleAccepted, User: "git", Method: "publickey"}},
		{"kbdint", "Accepted keyboard-interactive/pam for rda from 192.0.2.3 port 1 ssh2",
			Result{Kind: Login, Addr: netip.MustParseAddr("192.0.2.3"), Rule: RuleAccepted, User: "rda", Method: "keyboard-interactive/pam"}},
		{"ambiguous", "Accepted publickey for x from 1.2.3.4 port 22 ssh2: RSA-CERT SHA256:a ID y from 192.0.2.99 port 1 ssh2: RSA-CERT SHA256:b ID z (serial 1) CA RSA SHA256:c",
			Result{}},
		{"host name", "Accepted password for rda from host.example port 1 ssh2", Result{}},
		{"partial", "Partial publickey for rda from 192.0.2.4 port 1 ssh2: ED25519 SHA256:abc", Result{}},
		{"postponed", "Postponed publickey for git from 192.0.2.1 port 57904 ssh2 [preauth]", Result{}},
		{"failure", "Failed password for root from 192.0.2.7 port 50273 ssh2",
			Result{Kind: Failure, Addr: netip.MustParseAddr("192.0.2.7"), Rule: RuleFailed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := f.Classify(c.msg); got != c.want {
				t.Errorf("Classify(%q) = %+v, want %+v", c.msg, got, c.want)
			}
		})
	}
}

func TestEngineLogins(t *testing.T) {
	type login struct {
		jail string
		r    Result
		at   string
	}
	var got []login
	h := newHarness(t, settings())
	h.e = NewEngine(h.fw, h.ev, h.clock.now, WithLogins(func(jail string, r Result, e events.Entry) {
		got = append(got, login{jail, r, e.Time.Format("15:04:05")})
	}))
	f, _ := SSHD(ModeNormal)
	h.e.SetJail("sshd", f, settings())
	web, _ := NewFilter("web", []string{`Accepted password for \S+ from <HOST>`}, nil)
	h.e.SetJail("web", web, settings())

	msg := "Accepted password for rda from 192.0.2.113 port 52100 ssh2"
	if h.e.Handle("sshd", events.Entry{Time: t0, Message: msg}) {
		t.Error("a login is a failure")
	}
	// A config-defined filter knows no logins: its patterns are failures.
	if !h.e.Handle("web", events.Entry{Time: t0, Message: msg}) {
		t.Error("web's failregex did not match")
	}
	want := []login{{"sshd", Result{Kind: Login, Addr: netip.MustParseAddr("192.0.2.113"), Rule: RuleAccepted, User: "rda", Method: "password"}, "10:00:00"}}
	if len(got) != len(want) || got[0] != want[0] {
		t.Errorf("logins = %+v, want %+v", got, want)
	}
	if st, _ := h.e.Stats("sshd"); st.TotalFailed != 0 {
		t.Errorf("sshd TotalFailed = %d after a login", st.TotalFailed)
	}
}
