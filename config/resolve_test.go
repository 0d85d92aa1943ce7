package config

import (
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gaoler/gaoler/jails"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90s", 90 * time.Second, ""},
		{"10m", 10 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"2d", 48 * time.Hour, ""},
		{"1w", 7 * 24 * time.Hour, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"1w2d3h4m5s", (9*24+3)*time.Hour + 4*time.Minute + 5*time.Second, ""},
		{"600", 10 * time.Minute, ""},
		{"0", 0, ""},
		{"", 0, "empty duration"},
		{"10", 10 * time.Second, ""},
		{"1.5h", 0, `bad duration "1.5h": no fractions; write e.g. "1h30m" for 1.5 hours`},
		{"10 m", 0, `bad duration "10 m": number 10 has no unit (s, m, h, d or w)`},
		{"1hour", 0, `bad duration "1hour": unknown unit "hour" (use s, m, h, d or w)`},
		{"-5m", 0, `bad duration "-5m": expected a number at "-5m" (use e.g. "90s", "10m", "1h30m", "2d", "1w")`},
		{"h", 0, `bad duration "h": expected a number at "h" (use e.g. "90s", "10m", "1h30m", "2d", "1w")`},
		{"99999999999999999w", 0, `bad duration "99999999999999999w": too long`},
		{"99999999999999999999", 0, `bad duration "99999999999999999999": too long`},
	} {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseDuration(%q) error = %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		90 * time.Second: "1m30s", 36 * time.Hour: "1d12h", 7 * 24 * time.Hour: "1w", 0: "0s", 10 * time.Minute: "10m",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if d > 0 {
			if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
				t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", d, back, err)
			}
		}
	}
}

func TestParsePort(t *testing.T) {
	servicesFile, servicesOnce = "testdata/services", sync.Once{}
	defer func() { servicesFile, servicesOnce = "/etc/services", sync.Once{} }()
	for in, want := range map[string]PortRange{
		"ssh": {22, 22}, "22": {22, 22}, "2222": {2222, 2222}, "8000-8080": {8000, 8080}, "8000:8080": {8000, 8080},
		"http-alt": {8080, 8080}, "http-https": {80, 443}, "gaoler-test": {4242, 4242}, "gaoler-alias": {4242, 4242},
		"65535": {65535, 65535},
	} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65536", "nosuch", "10-", "-10", "9-8", "ssh-nosuch"} {
		if got, err := ParsePort(in); err == nil {
			t.Errorf("ParsePort(%q) = %v, want an error", in, got)
		}
	}
}

func TestDefaultsInherited(t *testing.T) {
	cfg, errs := load(t, map[string]string{"gaoler.toml": `
[defaults]
bantime = "1h"
findtime = 600
maxretry = 3
ignoreip = ["192.0.2.0/24", "2001:db8::1", "::ffff:198.51.100.7"]
ignoreself = false
blocktype = "drop"
ipv6_prefix = 64
hooks = ["input", "forward"]
max_tracked = 1000
ipv6_subnet_limit = 8
[defaults.increment]
enabled = true
factor = 3
maxtime = "2d"

[jail.sshd]
enabled = true

[jail.sshd-slow]
filter = "sshd"
mode = "aggressive"
bantime = "1d"
maxretry = 10
ports = ["ssh", "2222"]
protocol = "any"
hooks = ["forward"]
ignoreip = []
[jail.sshd-slow.increment]
overalljails = true
`})
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	defaults := jails.Settings{
		BanTime: time.Hour, FindTime: 10 * time.Minute, MaxRetry: 3,
		IgnoreIP: []netip.Prefix{
			netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128"),
			netip.MustParsePrefix("198.51.100.7/32"),
		},
		IgnoreSelf: false, IPv6Prefix: 64, MaxTracked: 1000, IPv6SubnetLimit: 8,
		Increment: jails.Increment{Enabled: true, Factor: 3, MaxTime: 48 * time.Hour},
		Trust:     defaultTrust(),
	}
	sshd := cfg.Jail("sshd")
	if sshd == nil || !sshd.Enabled || sshd.FilterName != "sshd" || sshd.Mode != "normal" || sshd.Protocol != "tcp" ||
		sshd.BlockType != "drop" || len(sshd.Ports) != 0 || !reflect.DeepEqual(sshd.Hooks, []string{"input", "forward"}) {
		t.Errorf("sshd = %+v", sshd)
	}
	if !reflect.DeepEqual(sshd.Settings, defaults) {
		t.Errorf("sshd settings\n got %+v\nwant %+v", sshd.Settings, defaults)
	}
	if sshd.Filter == nil || !reflect.DeepEqual(sshd.JournalMatch, sshd.Filter.DefaultMatch()) {
		t.Errorf("sshd filter %v, match %q", sshd.Filter, sshd.JournalMatch)
	}

	slow := cfg.Jail("sshd-slow")
	want := defaults
	want.BanTime, want.MaxRetry, want.IgnoreIP = 24*time.Hour, 10, []netip.Prefix{}
	want.Increment.OverallJails = true
	if !reflect.DeepEqual(slow.Settings, want) {
		t.Errorf("sshd-slow settings\n got %+v\nwant %+v", slow.Settings, want)
	}
	if slow.Enabled || slow.Mode != "aggressive" || slow.Protocol != "" || !reflect.DeepEqual(slow.Hooks, []string{"forward"}) ||
		!reflect.DeepEqual(slow.Ports, []string{"ssh", "2222"}) || !reflect.DeepEqual(slow.PortNumbers, []PortRange{{22, 22}, {2222, 2222}}) {
		t.Errorf("sshd-slow = %+v", slow)
	}
	if names := jailNames(cfg.Jails); !reflect.DeepEqual(names, []string{"sshd", "sshd-slow"}) {
		t.Errorf("jails %v", names)
	}
	if names := jailNames(cfg.Enabled()); !reflect.DeepEqual(names, []string{"sshd"}) {
		t.Errorf("enabled jails %v", names)
	}
}

func TestBuiltinDefaults(t *testing.T) {
	cfg, errs := load(t, map[string]string{"gaoler.toml": "[jail.sshd]\nenabled = true\n"})
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	want := baseJail()
	want.Name, want.FilterName, want.Enabled = "sshd", "sshd", true
	got := *cfg.Jail("sshd")
	got.Filter, got.JournalMatch = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	if cfg.Daemon != (Daemon{"/var/lib/gaoler", "nftables", "gaoler", DefaultMemoryLimit}) || cfg.Journal.Directory != "" {
		t.Errorf("daemon %+v journal %+v", cfg.Daemon, cfg.Journal)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %q", cfg.Warnings)
	}
}

func TestMerge(t *testing.T) {
	cfg, errs := load(t, map[string]string{
		"gaoler.toml": `
[daemon]
firewall = "none"
[defaults]
maxretry = 5
ignoreip = ["10.0.0.0/8", "192.0.2.1"]
[jail.sshd]
enabled = true
ports = ["ssh"]
bantime = "1h"
[jail.sshd.increment]
enabled = true
factor = 4
`,
		// Lexical order: 10 before 20 before 9 (as a string); ".toml" only.
		"jail.d/10-first.toml": `
[defaults]
ignoreip = ["172.16.0.0/12"]        # arrays are replaced, not appended
[jail.sshd]
ports = ["2222"]
maxretry = 2
[jail.sshd.increment]
maxtime = "3d"                       # tables merge key by key
[jail.web]
enabled = true
[filter.web]
journal_match = ["_SYSTEMD_UNIT=nginx.service"]
failregex = ['failed from <HOST>']
`,
		"jail.d/20-second.toml": `
[jail.sshd]
maxretry = 7
[jail.web]
enabled = false
`,
		"jail.d/9-last.toml": `
daemon.table = "fw2"
jail.sshd.ports = ["22", "2022"]
`,
		"jail.d/README":          "not read",
		"jail.d/x.toml.dpkg-old": "not read either",
	})
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	var files []string
	for _, f := range cfg.Files {
		files = append(files, f[strings.LastIndex(f, "/")+1:])
	}
	if !reflect.DeepEqual(files, []string{"gaoler.toml", "10-first.toml", "20-second.toml", "9-last.toml"}) {
		t.Errorf("files %v", files)
	}
	if cfg.Daemon.Firewall != "none" || cfg.Daemon.Table != "fw2" {
		t.Errorf("daemon %+v", cfg.Daemon)
	}
	sshd := cfg.Jail("sshd")
	if !reflect.DeepEqual(sshd.Ports, []string{"22", "2022"}) || sshd.Settings.MaxRetry != 7 || sshd.Settings.BanTime != time.Hour {
		t.Errorf("sshd %+v", sshd)
	}
	if got := sshd.Settings.IgnoreIP; !reflect.DeepEqual(got, []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}) {
		t.Errorf("ignoreip %v", got)
	}
	if inc := sshd.Settings.Increment; inc != (jails.Increment{Enabled: true, Factor: 4, MaxTime: 72 * time.Hour}) {
		t.Errorf("increment %+v", inc)
	}
	web := cfg.Jail("web")
	if web == nil || web.Enabled || web.FilterName != "web" || !reflect.DeepEqual(web.JournalMatch, []string{"_SYSTEMD_UNIT=nginx.service"}) {
		t.Errorf("web %+v", web)
	}
	if host, _, ok := web.Filter.Match("failed from 192.0.2.9"); !ok || host != netip.MustParseAddr("192.0.2.9") {
		t.Errorf("web filter: %v %v", host, ok)
	}
}

func TestWarnings(t *testing.T) {
	cfg, errs := load(t, map[string]string{"gaoler.toml": `
[jail.a]
enabled = true
filter = "logger"
[jail.b]
enabled = true
filter = "comm"
[jail.c]
enabled = true
filter = "logger"
journal_match = ["_SYSTEMD_UNIT=a.service", "+", "_UID=33", "SYSLOG_IDENTIFIER=x"]
[jail.d]
enabled = true
filter = "absent"
[jail.off]
filter = "logger"

[filter.absent]
journal_match = ["_SYSTEMD_UNIT=", "SYSLOG_IDENTIFIER=app"]
failregex = ["bad login from <HOST>"]
[filter.logger]
journal_match = ["SYSLOG_IDENTIFIER=app"]
failregex = ["bad login from <HOST>"]
[filter.comm]
journal_match = ["_COMM=app", "+", "_SYSTEMD_UNIT=app.service"]
failregex = ["bad login from <HOST>"]
`})
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	want := []string{
		`gaoler.toml:22:1: filter.logger.journal_match: the match "SYSLOG_IDENTIFIER=app" rests only on fields a client sets (SYSLOG_IDENTIFIER and the like): any local user can log forged failures (logger -t) and get any address banned; match trusted fields such as _SYSTEMD_UNIT, _EXE or _UID`,
		`gaoler.toml:25:1: filter.comm.journal_match: the match "_COMM=app" trusts only _COMM, which the sending process chooses: any local user can run a program by that name and log forged failures, getting any address banned; add _UID=0 or match _SYSTEMD_UNIT`,
		// "_SYSTEMD_UNIT=" asks for the field's absence: no trust in it.
		`gaoler.toml:19:1: filter.absent.journal_match: the match "_SYSTEMD_UNIT= SYSLOG_IDENTIFIER=app" rests only on fields a client sets (SYSLOG_IDENTIFIER and the like): any local user can log forged failures (logger -t) and get any address banned; match trusted fields such as _SYSTEMD_UNIT, _EXE or _UID`,
	}
	if !reflect.DeepEqual(cfg.Warnings, want) {
		t.Errorf("warnings:\n got %s\nwant %s", strings.Join(cfg.Warnings, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestShippedConfig(t *testing.T) {
	cfg, err := Load("../packaging/gaoler.toml")
	if err != nil {
		t.Fatal(err)
	}
	if names := jailNames(cfg.Enabled()); !reflect.DeepEqual(names, []string{"sshd"}) {
		t.Errorf("enabled jails %v, want [sshd]", names)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %q", cfg.Warnings)
	}
	sshd := cfg.Jail("sshd")
	if sshd.Settings.BanTime != 10*time.Minute || sshd.Settings.MaxRetry != 5 || !reflect.DeepEqual(sshd.PortNumbers, []PortRange{{22, 22}}) {
		t.Errorf("sshd %+v", sshd)
	}
}

func TestLocateKeys(t *testing.T) {
	text := "\xef\xbb\xbf# comment\n[a . 'b.c']  # x\nk = \"\"\"\nx = 1\n\"\"\"\nl = '''\n[not.a.table]\n'''\n\"q\\\"k\" = [ 1, [2, 3], { z = 1 },\n  \"s,]\" ]\nt = {x = {y = 1}}\n[[arr]]\nn = 1\n"
	got := locateKeys(text)
	want := map[string]position{
		"a": {2, 2}, `a."b.c"`: {2, 6}, `a."b.c".k`: {3, 1}, `a."b.c".l`: {6, 1}, `a."b.c"."q\"k"`: {9, 1},
		`a."b.c"."q\"k"[0]`: {9, 12}, `a."b.c"."q\"k"[1]`: {9, 15}, `a."b.c"."q\"k"[2]`: {9, 23}, `a."b.c"."q\"k"[3]`: {10, 3},
		`a."b.c".t`: {11, 1}, `a."b.c".t.x`: {11, 6}, `a."b.c".t.x.y`: {11, 11}, "arr": {12, 3}, "arr.n": {13, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %v\nwant %v", got, want)
	}
}

func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"[jail.sshd]\nenabled = true\n",
		"[defaults]\nbantime = \"1d12h\"\nignoreip = [\"10.0.0.0/8\"]\n[defaults.increment]\nfactor = 1.5\n",
		"[filter.x]\njournal_match = [\"_SYSTEMD_UNIT=x.service\"]\nfailregex = ['from <HOST>$']\n[jail.x]\nports=[\"1-2\"]\n",
		"a.b.c = { d = [1, {e = 'f'}] }\n",
		"x = \"\"\"\n\\\"\"\"\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		locateKeys(text) // also on text the decoder refuses: it must end and not panic
		cfg, err := Parse("fuzz.toml", text)
		if err == nil && cfg == nil {
			t.Fatal("no config and no error")
		}
		if err != nil {
			for _, e := range errorList(err) {
				if ce, ok := e.(*Error); !ok || ce.File != "fuzz.toml" {
					t.Fatalf("error %v is not a *Error of fuzz.toml", e)
				}
			}
		}
	})
}

func jailNames(js []*Jail) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.Name)
	}
	return out
}
