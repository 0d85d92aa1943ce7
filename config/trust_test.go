package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/jails"
)

func TestTrustAfterLoginKeys(t *testing.T) {
	cfg, errs := load(t, map[string]string{"gaoler.toml": `
[defaults]
trust_methods = ["publickey", "logind"]

[jail.sshd]
enabled = true

[jail.other]
filter = "sshd"
trust_after_login = "0"

[jail.wide]
filter = "sshd"
trust_after_login = "2h"
trust_overalljails = true
trust_methods = ["any"]
max_trusted = 50
`})
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	want := map[string]jails.TrustSettings{
		"sshd":  {After: jails.DefaultTrustAfterLogin, Methods: []string{"publickey", "logind"}},
		"other": {After: 0, Methods: []string{"publickey", "logind"}},
		"wide":  {After: 2 * time.Hour, Methods: []string{"any"}, OverallJails: true, MaxTrusted: 50},
	}
	for name, w := range want {
		if got := cfg.Jail(name).Settings.Trust; !reflect.DeepEqual(got, w) {
			t.Errorf("jail %s: trust %+v, want %+v", name, got, w)
		}
	}

	cfg, errs = load(t, map[string]string{"gaoler.toml": "[jail.sshd]\nenabled = true\n"})
	if errs != nil {
		t.Fatal(errs)
	}
	if got := cfg.Jail("sshd").Settings.Trust; got.After != 7*24*time.Hour || !reflect.DeepEqual(got.Methods, []string{"publickey"}) || got.OverallJails {
		t.Errorf("default trust %+v, want 7d, publickey only, per jail", got)
	}
}

func TestTrustAfterLoginErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[defaults]\ntrust_after_login = \"soon\"\n", `gaoler.toml:2:1: defaults.trust_after_login: bad duration "soon": expected a number at "soon" (use e.g. "90s", "10m", "1h30m", "2d", "1w")`},
		{"[defaults]\ntrust_methods = [\"publikey\"]\n", `gaoler.toml:2:18: defaults.trust_methods[0]: unknown method "publikey" (did you mean "publickey"?)`},
		{"[defaults]\ntrust_methods = [\"pubkey\"]\n", `gaoler.toml:2:18: defaults.trust_methods[0]: unknown method "pubkey" (known: publickey, password, keyboard-interactive, hostbased, gssapi-with-mic, gssapi-keyex, none, logind, any)`},
		{"[defaults]\ntrust_methods = []\n", `gaoler.toml:2:1: defaults.trust_methods: lists no method: to turn the trust after login off, set trust_after_login = "0"`},
		{"[defaults]\ntrust_methods = [\"password\", \"password\"]\n", `gaoler.toml:2:30: defaults.trust_methods[1]: "password" is listed twice`},
		{"[defaults]\ntrust_overalljails = \"yes\"\n", `gaoler.toml:2:1: defaults.trust_overalljails: must be a boolean (true or false), not a string`},
	} {
		_, errs := load(t, map[string]string{"gaoler.toml": tc.text + "[jail.sshd]\nenabled = true\n"})
		if len(errs) != 1 || errs[0] != tc.want {
			t.Errorf("%q: errors %q, want %q", tc.text, errs, tc.want)
		}
	}
}
