package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeConfig writes files (relative names -> text) into a fresh folder and returns the folder.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// load loads dir/gaoler.toml and returns the config and the error lines with dir stripped.
func load(t *testing.T, files map[string]string) (*Config, []string) {
	t.Helper()
	dir := writeConfig(t, files)
	cfg, err := Load(filepath.Join(dir, "gaoler.toml"))
	if err == nil {
		for i, w := range cfg.Warnings {
			cfg.Warnings[i] = strings.ReplaceAll(w, dir+"/", "")
		}
		return cfg, nil
	}
	var lines []string
	for _, e := range errorList(err) {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %v (%T) is not a *config.Error", e, e)
		}
		lines = append(lines, strings.ReplaceAll(e.Error(), dir+"/", ""))
	}
	return nil, lines
}

func errorList(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"syntax", map[string]string{"gaoler.toml": "[daemon]\nfirewall = nftables\n"},
			[]string{`gaoler.toml:2:12: daemon.firewall: expected value but found "nftables" instead`}},
		{"missing main file", map[string]string{"other.toml": ""},
			[]string{"gaoler.toml: no such file or directory"}},
		{"unknown top-level key", map[string]string{"gaoler.toml": "[jails.sshd]\nenabled = true\n"},
			[]string{`gaoler.toml:1:2: jails: unknown key (did you mean "jail"?)`}},
		{"unknown key with suggestion", map[string]string{"gaoler.toml": "[defaults]\nbantme = \"1h\"\n"},
			[]string{`gaoler.toml:2:1: defaults.bantme: unknown key (did you mean "bantime"?)`}},
		{"unknown key without suggestion", map[string]string{"gaoler.toml": "[daemon]\ncolour = \"red\"\n"},
			[]string{`gaoler.toml:2:1: daemon.colour: unknown key (known here: state_directory, firewall, table, memory_limit)`}},
		{"unknown key in jail", map[string]string{"gaoler.toml": "[jail.sshd]\nenabled = true\ncolour = \"red\"\n"},
			[]string{`gaoler.toml:3:1: jail.sshd.colour: unknown key (known here: bantime, findtime, maxretry, ignoreip, ignoreself, blocktype, ipv6_prefix, increment, hooks, ports, protocol, max_tracked, ipv6_subnet_limit, trust_after_login, trust_methods, trust_overalljails, max_trusted, actions, enabled, filter, mode, journal_match)`}},
		{"unknown key in increment", map[string]string{"gaoler.toml": "[defaults.increment]\nfactr = 2\n"},
			[]string{`gaoler.toml:2:1: defaults.increment.factr: unknown key (did you mean "factor"?)`}},
		{"bad hot_time", map[string]string{"gaoler.toml": "[journal]\nhot_time = \"soon\"\n"},
			[]string{`gaoler.toml:2:1: journal.hot_time: bad duration "soon": expected a number at "soon" (use e.g. "90s", "10m", "1h30m", "2d", "1w")`}},
		{"wrong type", map[string]string{"gaoler.toml": "[defaults]\nmaxretry = \"5\"\nignoreself = 1\n"},
			[]string{`gaoler.toml:2:1: defaults.maxretry: must be an integer, not a string`,
				`gaoler.toml:3:1: defaults.ignoreself: must be a boolean (true or false), not an integer`}},
		{"table expected", map[string]string{"gaoler.toml": "jail = 3\n"},
			[]string{`gaoler.toml:1:1: jail: must be a table, not an integer`}},
		{"jail not a table", map[string]string{"gaoler.toml": "[jail]\nsshd = true\n"},
			[]string{`gaoler.toml:2:1: jail.sshd: must be a table, not a boolean`}},
		{"bad durations", map[string]string{"gaoler.toml": "[defaults]\nbantime = \"10 minutes\"\nfindtime = \"5x\"\n[defaults.increment]\nmaxtime = 0\n"},
			[]string{`gaoler.toml:2:1: defaults.bantime: bad duration "10 minutes": number 10 has no unit (s, m, h, d or w)`,
				`gaoler.toml:3:1: defaults.findtime: bad duration "5x": unknown unit "x" (use s, m, h, d or w)`,
				`gaoler.toml:5:1: defaults.increment.maxtime: must be longer than zero`}},
		{"duration of wrong type", map[string]string{"gaoler.toml": "[jail.sshd]\nbantime = 1.5\n"},
			[]string{`gaoler.toml:2:1: jail.sshd.bantime: must be a duration ("10m", "1h30m", "2d") or a number of seconds, not a float`}},
		{"bad ignoreip", map[string]string{"gaoler.toml": "[defaults]\nignoreip = [\"127.0.0.1\", \"10.0.0.0/33\",\n  \"localhost\", 7]\n"},
			[]string{`gaoler.toml:2:26: defaults.ignoreip[1]: bad CIDR prefix "10.0.0.0/33"`,
				`gaoler.toml:3:3: defaults.ignoreip[2]: bad address "localhost" (want an IPv4 or IPv6 address or a CIDR prefix; host names are not resolved)`,
				`gaoler.toml:3:16: defaults.ignoreip[3]: must be a string, not an integer`}},
		{"maxretry below one", map[string]string{"gaoler.toml": "[jail.sshd]\nmaxretry = 0\n"},
			[]string{`gaoler.toml:2:1: jail.sshd.maxretry: must be at least 1, not 0`}},
		{"ipv6_prefix out of range", map[string]string{"gaoler.toml": "[defaults]\nipv6_prefix = 129\n[jail.sshd]\nipv6_prefix = 0\n"},
			[]string{`gaoler.toml:2:1: defaults.ipv6_prefix: must be from 1 to 128, not 129`,
				`gaoler.toml:4:1: jail.sshd.ipv6_prefix: must be from 1 to 128, not 0`}},
		{"factor below one", map[string]string{"gaoler.toml": "[jail.sshd.increment]\nfactor = 0.5\n"},
			[]string{`gaoler.toml:2:1: jail.sshd.increment.factor: must be at least 1, not 0.5`}},
		{"bad enumerations", map[string]string{"gaoler.toml": "[daemon]\nfirewall = \"iptables\"\n[defaults]\nblocktype = \"deny\"\nprotocol = \"sctp\"\nhooks = [\"output\"]\n"},
			[]string{`gaoler.toml:2:1: daemon.firewall: "iptables" is not "nftables" or "none"`,
				`gaoler.toml:4:1: defaults.blocktype: "deny" is not "reject" or "drop"`,
				`gaoler.toml:5:1: defaults.protocol: "sctp" is not "tcp", "udp" or "any"`,
				`gaoler.toml:6:10: defaults.hooks[0]: "output" is not "input" or "forward"`}},
		{"hooks empty and twice", map[string]string{"gaoler.toml": "[jail.a]\nfilter = \"sshd\"\nhooks = []\n[jail.b]\nfilter = \"sshd\"\nhooks = [\"input\", \"input\"]\n"},
			[]string{`gaoler.toml:3:1: jail.a.hooks: must name at least one hook ("input", "forward")`,
				`gaoler.toml:6:19: jail.b.hooks[1]: "input" is listed twice`}},
		{"bad ports", map[string]string{"gaoler.toml": "[jail.sshd]\nports = [\"ssh\", \"nosuchservice\", \"0\", \"99999\", \"90-80\"]\n"},
			[]string{`gaoler.toml:2:17: jail.sshd.ports[1]: unknown port name "nosuchservice" (not built in, not in /etc/services)`,
				`gaoler.toml:2:34: jail.sshd.ports[2]: bad port "0": a port is a number from 1 to 65535 or a service name`,
				`gaoler.toml:2:39: jail.sshd.ports[3]: bad port "99999": a port is a number from 1 to 65535 or a service name`,
				`gaoler.toml:2:48: jail.sshd.ports[4]: bad port range "90-80": 90 is above 80`}},
		{"bad names", map[string]string{"gaoler.toml": "[daemon]\ntable = \"my table\"\n[jail.\"a b\"]\nenabled = true\n[filter._x]\nfailregex = [\"<HOST>\"]\n"},
			[]string{`gaoler.toml:2:1: daemon.table: bad table name "my table": use up to 32 letters, digits, '_' and '-'`,
				`gaoler.toml:3:7: jail."a b": bad jail name "a b": use up to 32 letters, digits, '_' and '-', starting with a letter or digit`,
				`gaoler.toml:5:9: filter._x: bad filter name "_x": use up to 32 letters, digits, '_' and '-', starting with a letter or digit`}},
		{"unknown filter", map[string]string{"gaoler.toml": "[jail.web]\nenabled = true\n\n[jail.ftp]\nfilter = \"vsftpd\"\n"},
			[]string{`gaoler.toml:1:7: jail.web: unknown filter "web": not built in, and no [filter.web] table`,
				`gaoler.toml:5:1: jail.ftp.filter: unknown filter "vsftpd": not built in, and no [filter.vsftpd] table`}},
		{"bad mode", map[string]string{"gaoler.toml": "[jail.sshd]\nmode = \"paranoid\"\n"},
			[]string{`gaoler.toml:2:1: jail.sshd.mode: sshd: unknown mode "paranoid" (want normal, ddos or aggressive)`}},
		{"mode on a config filter", map[string]string{"gaoler.toml": "[jail.web]\nmode = \"ddos\"\n[filter.web]\njournal_match = [\"_SYSTEMD_UNIT=nginx.service\"]\nfailregex = [\"from <HOST>\"]\n"},
			[]string{`gaoler.toml:2:1: jail.web.mode: filter "web" is defined in the config and has no modes (modes belong to built-in filters)`}},
		{"bad regexes", map[string]string{"gaoler.toml": "[filter.web]\njournal_match = [\"_SYSTEMD_UNIT=nginx.service\"]\nfailregex = [\n  'from <HOST> (',\n  'no host here',\n  'ok <HOST>',\n]\nignoreregex = ['[']\n"},
			[]string{`gaoler.toml:4:3: filter.web.failregex[0]: bad regular expression: missing closing ): ` + "`from (?:[0-9A-Fa-f:.]+) (`",
				`gaoler.toml:5:3: filter.web.failregex[1]: no <HOST> in the pattern: a failure must say whom to ban`,
				`gaoler.toml:8:16: filter.web.ignoreregex[0]: bad regular expression: missing closing ]: ` + "`[`"}},
		{"filter without failregex", map[string]string{"gaoler.toml": "[filter.web]\njournal_match = [\"_SYSTEMD_UNIT=nginx.service\"]\n"},
			[]string{`gaoler.toml:1:9: filter.web: failregex is missing: a filter needs at least one pattern`}},
		{"bad journal_match", map[string]string{"gaoler.toml": "[filter.web]\njournal_match = [\"+\", \"unit=nginx\", \"_COMM=x\", \"+\"]\nfailregex = [\"<HOST>\"]\n"},
			[]string{`gaoler.toml:2:18: filter.web.journal_match[0]: "+" must stand between two groups of matches`,
				`gaoler.toml:2:23: filter.web.journal_match[1]: bad match "unit=nginx": want FIELD=value (FIELD in upper case, e.g. "_SYSTEMD_UNIT=nginx.service") or "+"`,
				`gaoler.toml:2:48: filter.web.journal_match[3]: "+" must stand between two groups of matches`}},
		{"no journal_match anywhere", map[string]string{"gaoler.toml": "[jail.web]\nenabled = true\n[filter.web]\nfailregex = [\"<HOST>\"]\n"},
			[]string{`gaoler.toml:1:7: jail.web: no journal_match: set one here or in [filter.web], or every journal entry would be tested`}},
		{"state_directory relative", map[string]string{"gaoler.toml": "[daemon]\nstate_directory = \"var/lib\"\n"},
			[]string{`gaoler.toml:2:1: daemon.state_directory: must be an absolute path, not "var/lib"`}},
		{"errors in several files, in merge order", map[string]string{
			"gaoler.toml":          "[jail.sshd]\nenabled = true\n",
			"jail.d/20-b.toml":     "[jail.sshd]\nbantime = \"forever\"\n",
			"jail.d/10-a.toml":     "[jail.sshd]\nmaxretry = -1\n",
			"jail.d/30-c.toml.off": "this is not toml",
		}, []string{
			`jail.d/10-a.toml:2:1: jail.sshd.maxretry: must be at least 1, not -1`,
			`jail.d/20-b.toml:2:1: jail.sshd.bantime: bad duration "forever": expected a number at "forever" (use e.g. "90s", "10m", "1h30m", "2d", "1w")`,
		}},
		{"a syntax error in a drop-in", map[string]string{
			"gaoler.toml":      "[jail.sshd]\nenabled = true\n",
			"jail.d/10-a.toml": "[jail.sshd\n",
		}, []string{`jail.d/10-a.toml:2:11: expected '.' or ']' to end table name, but got '\n' instead`}},
		{"inline tables and dotted keys are located", map[string]string{"gaoler.toml": "jail.sshd.increment = { factor = 0, maxtime = \"1x\" }\n"},
			[]string{`gaoler.toml:1:25: jail.sshd.increment.factor: must be at least 1, not 0`,
				`gaoler.toml:1:37: jail.sshd.increment.maxtime: bad duration "1x": unknown unit "x" (use s, m, h, d or w)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := load(t, tc.files)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.want, "\n     "))
			}
		})
	}
}

func TestHotTime(t *testing.T) {
	cfg, errs := load(t, map[string]string{"gaoler.toml": "[jail.sshd]\nenabled = true\n"})
	if errs != nil || cfg.Journal.HotTime != DefaultHotTime {
		t.Fatalf("default hot_time: %v %v, want %v", cfg.Journal.HotTime, errs, DefaultHotTime)
	}
	cfg, errs = load(t, map[string]string{"gaoler.toml": "[journal]\nhot_time = \"2m\"\n", "jail.d/a.toml": "[journal]\nhot_time = 5\n"})
	if errs != nil || cfg.Journal.HotTime != 5*time.Second {
		t.Fatalf("hot_time from a drop-in: %v %v, want 5s", cfg.Journal.HotTime, errs)
	}
}

func TestSummaryAndPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 jails", 1: "1 jail", 2: "2 jails"} {
		if got := Plural(n, "jail"); got != want {
			t.Errorf("Plural(%d) = %q, want %q", n, got, want)
		}
	}
	cfg := &Config{Jails: []*Jail{{Name: "sshd", Enabled: true}, {Name: "off"}, {Name: "web", Enabled: true}}, Files: []string{"a", "b"}}
	if got, want := cfg.Summary(), "2 jails enabled (sshd, web), 2 files read"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	if got, want := (&Config{Files: []string{"a"}}).Summary(), "0 jails enabled, 1 file read"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}
