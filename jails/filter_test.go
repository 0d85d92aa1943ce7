package jails

import (
	"errors"
	"testing"
)

func TestNewFilter(t *testing.T) {
	f, err := NewFilter("nginx-auth",
		[]string{`user "\S+":? password mismatch, client: <HOST>,`, `^auth failed (?:by <HOST>|from <HOST>)$`},
		[]string{`client: 192\.0\.2\.99,`})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ msg, host, rule string }{
		{`user "bob": password mismatch, client: 192.0.2.7, server: x`, "192.0.2.7", "failregex[0]"},
		{`user "bob" password mismatch, client: 2001:db8::7, server: x`, "2001:db8::7", "failregex[0]"},
		{`user "bob" password mismatch, client: ::ffff:192.0.2.8, server: x`, "192.0.2.8", "failregex[0]"},
		{`auth failed from 192.0.2.9`, "192.0.2.9", "failregex[1]"},
		{`auth failed by 192.0.2.10`, "192.0.2.10", "failregex[1]"},
		{`user "bob": password mismatch, client: 192.0.2.99, server: x`, "", ""},
		{`user "bob": password mismatch, client: 999.0.2.1, server: x`, "", ""},
		{`something else`, "", ""},
	} {
		h, rule, ok := f.Match(c.msg)
		got := ""
		if ok {
			got = h.String()
		}
		if got != c.host || rule != c.rule {
			t.Errorf("Match(%q) = %q %q, want %q %q", c.msg, got, rule, c.host, c.rule)
		}
	}
	if f.DefaultMatch() != nil || len(f.Rules()) != 2 || f.Name() != "nginx-auth" {
		t.Errorf("DefaultMatch %v Rules %v Name %q", f.DefaultMatch(), f.Rules(), f.Name())
	}
}

func TestNewFilterErrors(t *testing.T) {
	for _, c := range []struct {
		name         string
		fail, ignore []string
		key          string
		index        int
		noHost       bool
	}{
		{"missing host", []string{`ok <HOST>`, `no host here`}, nil, "failregex", 1, true},
		{"bad failregex", []string{`(<HOST>`}, nil, "failregex", 0, false},
		{"bad ignoreregex", []string{`<HOST>`}, []string{`ok`, `a(?<=b)`}, "ignoreregex", 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewFilter("x", c.fail, c.ignore)
			var re *RegexError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want *RegexError", err)
			}
			if re.Key != c.key || re.Index != c.index || errors.Is(err, ErrNoHost) != c.noHost {
				t.Errorf("err = %#v (%v)", re, err)
			}
		})
	}
}

// TestNewFilterMultiLine pins down how a config-defined filter reads a MESSAGE that holds newlines
// (a sender may write any bytes there): the message is one text, ^ and $ are its start and end
// unless the pattern asks for (?m), and '.' does not cross a newline unless (?s) lets it.
func TestNewFilterMultiLine(t *testing.T) {
	const msg = "auth failed from 192.0.2.1 user x\nauth failed from 192.0.2.2"
	for _, c := range []struct {
		name, re, host string
	}{
		{"unanchored finds the first line's", `auth failed from <HOST>`, "192.0.2.1"},
		{"$ is the end of the message", `auth failed from <HOST>$`, "192.0.2.2"},
		{"^ is the start of the message", `^auth failed from <HOST>$`, ""},
		{"(?m) makes them line anchors", `(?m)^auth failed from <HOST>$`, "192.0.2.2"},
		{"dot does not cross a newline", `^auth failed from \S+ user .*from <HOST>`, ""},
		{"(?s) lets it", `(?s)^auth failed from \S+ user .*from <HOST>`, "192.0.2.2"},
		{"whitespace classes do", `user x\sauth failed from <HOST>`, "192.0.2.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := NewFilter("x", []string{c.re}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if h, _, ok := f.Match(msg); ok {
				got = h.String()
			}
			if got != c.host {
				t.Errorf("%s on %q = %q, want %q", c.re, msg, got, c.host)
			}
		})
	}
}
