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
