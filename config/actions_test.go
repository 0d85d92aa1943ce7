package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestActions(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "abuseipdb.key")
	secret := filepath.Join(dir, "webhook.key")
	os.WriteFile(key, []byte("  k3y \n"), 0o600)
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	cfg, errs := load(t, map[string]string{"gaoler.toml": `
[defaults]
actions = ["mail"]

[jail.sshd]
enabled = true
actions = ["mail", "report", "notify", "chat"]

[jail.other]
filter = "sshd"

[action.mail]
type = "mail"
to = ["admin@example.org"]
digest = "1m"

[action.notify]
type = "exec"
command = ["true", "{event}", "--ip={address}", "{{x}}"]
events = ["ban", "unban"]
timeout = "5s"

[action.chat]
type = "webhook"
url = "https://hooks.example.org/gaoler"
secret_file = "` + secret + `"

[action.report]
type = "abuseipdb"
key_file = "` + key + `"
categories = [18, 22]
`})
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	if got := cfg.Jail("sshd").Actions; !reflect.DeepEqual(got, []string{"mail", "report", "notify", "chat"}) {
		t.Errorf("sshd actions %v", got)
	}
	if got := cfg.Jail("other").Actions; !reflect.DeepEqual(got, []string{"mail"}) {
		t.Errorf("other jail's actions %v, want the defaults'", got)
	}
	m := cfg.Actions["mail"]
	if m.Type != "mail" || !m.Whois || !m.Lines || m.Digest != time.Minute || m.SMTP != "" || m.From != "" || !reflect.DeepEqual(m.Events, []string{"ban"}) || m.Timeout != DefaultActionTimeout {
		t.Errorf("mail %+v", m)
	}
	n := cfg.Actions["notify"]
	if n.Command[0] != "/usr/bin/true" && n.Command[0] != "/bin/true" || !reflect.DeepEqual(n.Command[1:], []string{"{event}", "--ip={address}", "{{x}}"}) || n.Timeout != 5*time.Second || len(n.Events) != 2 {
		t.Errorf("notify %+v", n)
	}
	if c := cfg.Actions["chat"]; string(c.Secret) != "s3cret" || c.Retries != DefaultActionRetries {
		t.Errorf("chat %+v", c)
	}
	if r := cfg.Actions["report"]; r.Key != "k3y" || r.URL != DefaultAbuseIPDBURL || !reflect.DeepEqual(r.Categories, []int{18, 22}) || r.DailyBudget != 1000 {
		t.Errorf("report %+v", r)
	}
}

func TestActionErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[action.a]\ntype = \"exec\"\ncommand = [\"/nonexistent/prog\"]\n", `gaoler.toml:3:12: action.a.command[0]: program /nonexistent/prog: no such file or directory`},
		{"[action.a]\ntype = \"exec\"\ncommand = [\"no-such-program-here\"]\n", `gaoler.toml:3:12: action.a.command[0]: program "no-such-program-here" not found on PATH: give its absolute path`},
		{"[action.a]\ntype = \"exec\"\ncommand = [\"/etc/passwd\"]\n", `gaoler.toml:3:12: action.a.command[0]: program /etc/passwd is not executable`},
		{"[action.a]\ntype = \"exec\"\ncommand = [\"/bin/true\", \"{adress}\"]\n", `gaoler.toml:3:25: action.a.command[1]: unknown placeholder {adress} (known: {event} {jail} {address} {bantime} {expires} {ban_count} {failures} {hostname})`},
		{"[action.a]\ntype = \"exec\"\ncommand = [\"{address}\"]\n", `gaoler.toml:3:12: action.a.command[0]: the program must be a fixed path, not a placeholder`},
		{"[action.a]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\nto = [\"x@example.org\"]\n", `gaoler.toml:4:1: action.a.to: unknown key (known here: type, events, timeout, queue, command)`},
		{"[action.a]\ntype = \"exec\"\n", `gaoler.toml:1:9: action.a: no command: set command = ["/path/to/program", "{address}", ...]`},
		{"[action.a]\ntype = \"sms\"\n", `gaoler.toml:2:1: action.a.type: "sms" is not "exec", "mail", "webhook" or "abuseipdb"`},
		{"[action.a]\ntype = \"mail\"\nto = [\"Admin <admin@example.org>\"]\n", `gaoler.toml:3:7: action.a.to[0]: "Admin <admin@example.org>" is not a mail address (write it alone, as user@example.org)`},
		{"[action.a]\ntype = \"mail\"\nto = [\"a@example.org\"]\nsmtp = \"mail.example.org\"\n", `gaoler.toml:4:1: action.a.smtp: "mail.example.org" is not host:port (such as "smtp.example.org:587" or "[2001:db8::1]:25")`},
		{"[action.a]\ntype = \"mail\"\nto = [\"a@example.org\"]\ndigset = \"1m\"\n", `gaoler.toml:4:1: action.a.digset: unknown key (did you mean "digest"?)`},
		{"[action.a]\ntype = \"abuseipdb\"\nkey_file = \"/nonexistent/key\"\ncategories = [18]\n", `gaoler.toml:3:1: action.a.key_file: cannot read /nonexistent/key: no such file or directory`},
		{"[action.a]\ntype = \"abuseipdb\"\nkey_file = \"/etc/passwd\"\ncategories = [99]\n", `gaoler.toml:4:15: action.a.categories[0]: 99 is not an AbuseIPDB category (1 to 30; see https://www.abuseipdb.com/categories)`},
		{"[action.a]\ntype = \"webhook\"\nurl = \"ftp://x\"\n", `gaoler.toml:3:1: action.a.url: "ftp://x" is not an http:// or https:// URL`},
		{"[jail.sshd]\nenabled = true\nactions = [\"mial\"]\n[action.mail]\ntype = \"mail\"\nto = [\"a@example.org\"]\n", `gaoler.toml:3:12: jail.sshd.actions[0]: unknown action "mial" (did you mean "mail"?)`},
		{"[defaults]\nactions = [\"nope\"]\n[jail.sshd]\nenabled = true\n", `gaoler.toml:2:12: defaults.actions[0]: unknown action "nope": no [action.nope] table`},
	} {
		_, errs := load(t, map[string]string{"gaoler.toml": tc.text})
		if len(errs) != 1 || errs[0] != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.text, errs, tc.want)
		}
	}
}

func TestCheckTemplate(t *testing.T) {
	for _, tc := range []struct {
		arg string
		ok  bool
	}{
		{"{address}", true}, {"--ip={address}/{jail}", true}, {"{{}}", true}, {"plain", true}, {"{{address}}", true},
		{"{adress}", false}, {"{address", false}, {"a}b", false}, {"{}", false},
	} {
		if err := checkTemplate(tc.arg); (err == nil) != tc.ok {
			t.Errorf("checkTemplate(%q) = %v, want ok=%v", tc.arg, err, tc.ok)
		}
	}
}
