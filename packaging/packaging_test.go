// Package packaging holds what a distribution installs besides the binaries: the systemd unit, the
// journal catalog, man pages, bash completion, the Debian packaging and the build-deb.sh script that
// make deb runs. Its tests check these files with the tools that consume them (systemd-analyze, journalctl,
// man, bash, dpkg), and, as root with GAOLER_INTEGRATION=1, build the .deb, install it, check the
// installed system and purge it.
package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

// messageIDs returns the MESSAGE_IDs the daemon logs, from the events package, so the catalog follows
// the code.
func messageIDs(t *testing.T) []string {
	t.Helper()
	if len(events.EventIDs) < 8 {
		t.Fatalf("events.EventIDs holds %d MESSAGE_IDs, want at least 8", len(events.EventIDs))
	}
	return events.EventIDs
}

// catalogEntries parses gaoler.catalog into id -> header lines and body.
func catalogEntries(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("catalog/gaoler.catalog")
	if err != nil {
		t.Fatal(err)
	}
	entries := make(map[string]string)
	var id string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "-- "); ok {
			id = strings.TrimSpace(rest)
			if _, dup := entries[id]; dup {
				t.Errorf("catalog: %s defined twice", id)
			}
			entries[id] = ""
			continue
		}
		if id != "" {
			entries[id] += line + "\n"
		}
	}
	return entries
}

func TestCatalogCoversEveryEvent(t *testing.T) {
	entries := catalogEntries(t)
	ids := messageIDs(t)
	for _, id := range ids {
		e, ok := entries[id]
		if !ok {
			t.Errorf("catalog has no entry for MESSAGE_ID %s", id)
			continue
		}
		for _, h := range []string{"\nSubject: ", "\nDefined-By: gaoler\n", "\nSupport: ", "\nDocumentation: man:"} {
			if !strings.Contains("\n"+e, h) {
				t.Errorf("catalog entry %s lacks %q", id, strings.TrimSpace(h))
			}
		}
		if _, body, _ := strings.Cut(e, "\n\n"); len(strings.Fields(body)) < 20 {
			t.Errorf("catalog entry %s: body too short to explain the event", id)
		}
	}
	if len(entries) != len(ids) {
		t.Errorf("catalog has %d entries, the daemon logs %d MESSAGE_IDs", len(entries), len(ids))
	}
}

// TestCatalogCompiles compiles the catalog into a database under a temporary root with journalctl,
// the way systemd's file trigger does on installation, and lists it back.
func TestCatalogCompiles(t *testing.T) {
	journalctl := testenv.RequireCommand(t, "journalctl")
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/systemd/catalog")
	copyFile(t, "catalog/gaoler.catalog", filepath.Join(dir, "gaoler.catalog"), 0o644)
	if out, err := exec.Command(journalctl, "--root", root, "--update-catalog").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("journalctl --update-catalog: %v: %s", err, out)
	}
	out, err := exec.Command(journalctl, "--root", root, "--list-catalog").CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v: %s", err, out)
	}
	for _, id := range messageIDs(t) {
		if !strings.Contains(string(out), id+" gaoler: ") {
			t.Errorf("journalctl --list-catalog does not list %s:\n%s", id, out)
		}
	}
}

// unitDirectives reads a unit file into section.key -> values (keys may repeat).
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := make(map[string][]string)
	section := ""
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			d[section+"."+k] = append(d[section+"."+k], v)
		}
	}
	return d
}

func TestUnitDirectives(t *testing.T) {
	d := unitDirectives(t, "systemd/gaolerd.service")
	want := map[string]string{
		"Service.Type":                    "notify",
		"Service.NotifyAccess":            "main",
		"Service.ExecStartPre":            "/usr/sbin/gaolerd --check",
		"Service.ExecStart":               "/usr/sbin/gaolerd",
		"Service.WatchdogSec":             "30s",
		"Service.Restart":                 "on-failure",
		"Service.StateDirectory":          "gaoler",
		"Service.StateDirectoryMode":      "0700",
		"Service.CapabilityBoundingSet":   "CAP_NET_ADMIN",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.ProtectKernelTunables":   "yes",
		"Service.ProtectKernelModules":    "yes",
		"Service.ProtectKernelLogs":       "yes",
		"Service.ProtectControlGroups":    "yes",
		"Service.RestrictAddressFamilies": "AF_UNIX AF_NETLINK AF_INET AF_INET6",
		"Service.IPAddressDeny":           "any",
		"Service.IPAddressAllow":          "localhost",
		"Service.SystemCallArchitectures": "native",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Install.WantedBy":                "multi-user.target",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// The reload checks the config before it signals: a broken one fails `systemctl reload` visibly.
	if got := d["Service.ExecReload"]; strings.Join(got, "\n") != "/usr/sbin/gaolerd --check\n/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload = %q, want gaolerd --check, then kill -HUP $MAINPID", got)
	}
	if got := d["Service.SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter = %q, want @system-service first", got)
	}
	for _, k := range []string{"Service.User", "Service.DynamicUser", "Service.PrivateNetwork", "Service.PrivateUsers"} {
		if _, ok := d[k]; ok {
			t.Errorf("%s is set: gaolerd needs root's journal access and the host's netfilter", k)
		}
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit inside a temporary root, with a stand-in
// executable at /usr/sbin/gaolerd. systemd-analyze exits 0 on unknown keys and bad values, so any
// output is a failure.
func TestUnitVerifies(t *testing.T) {
	sa := testenv.RequireCommand(t, "systemd-analyze")
	root := t.TempDir()
	copyFile(t, "systemd/gaolerd.service", filepath.Join(root, "lib/systemd/system/gaolerd.service"), 0o644)
	copyFile(t, "systemd/gaolerd-metrics.socket", filepath.Join(root, "lib/systemd/system/gaolerd-metrics.socket"), 0o644)
	copyFile(t, "/bin/true", filepath.Join(root, "usr/sbin/gaolerd"), 0o755)
	copyFile(t, "/bin/kill", filepath.Join(root, "bin/kill"), 0o755)
	cmd := exec.Command(sa, "verify", "--root", root, "--man=no", "gaolerd.service", "gaolerd-metrics.socket")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitExposure scores the unit's sandbox with systemd-analyze security: the actions opened it to
// inet sockets (loopback only, as shipped), which must keep the exposure at or under 2.5.
func TestUnitExposure(t *testing.T) {
	sa := testenv.RequireCommand(t, "systemd-analyze")
	out, err := exec.Command(sa, "security", "--offline=yes", "--no-pager", "systemd/gaolerd.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for gaolerd.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	level, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || level > 2.5 {
		t.Fatalf("exposure %s, want at most 2.5:\n%s", m[1], out)
	}
	t.Logf("exposure %.1f", level)
}

// TestManPages formats each page with man and groff's warnings on, and checks that it documents
// what it must.
func TestManPages(t *testing.T) {
	man := testenv.RequireCommand(t, "man")
	pages := map[string][]string{
		"gaolerd.8": {"--config", "--check", "--version", "--flush-firewall", "SIGHUP", "WATCHDOG=1",
			"What one failure is", "Hot mode", "ignoreip", "io.github.gaoler.Gaoler1", "/var/lib/gaoler",
			"61a385ffb21f4b869834b9f02831d782", "54ff4a2776d543e2ad0d7809d9cd02b4", "EXIT STATUS"},
		"gaoler.1": {"status", "banned", "ban", "unban --all", "reload", "log", "test-filter", "check-config",
			"--json", "--for", "--since", "--mode", "--journal", "--directory", "DBUS_SYSTEM_BUS_ADDRESS", "EXIT STATUS",
			"trust JAIL ADDRESS", "untrust JAIL ADDRESS", "trusted"},
		"gaoler.toml.5": {"state_directory", "firewall", "table", "directory", "bantime", "findtime", "maxretry",
			"ignoreip", "ignoreself", "blocktype", "ports", "protocol", "hooks", "ipv6_prefix", "max_tracked",
			"increment", "factor", "maxtime", "overalljails", "enabled", "filter", "mode", "journal_match",
			"failregex", "ignoreregex", "<HOST>", "SYSLOG_IDENTIFIER", "jail.d",
			"trust_after_login", "trust_methods", "trust_overalljails", "max_trusted", "TRUST AFTER LOGIN"},
	}
	for page, terms := range pages {
		t.Run(page, func(t *testing.T) {
			cmd := exec.Command(man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", filepath.Join("man", page))
			cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANWIDTH=80")
			var stderr strings.Builder
			cmd.Stderr = &stderr // stdout is groff's device output
			if err := cmd.Run(); err != nil {
				t.Fatalf("man: %v: %s", err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("groff: %s", stderr.String())
			}
			text := render(t, man, page)
			for _, term := range terms {
				if !strings.Contains(text, term) {
					t.Errorf("%s does not mention %q", page, term)
				}
			}
		})
	}
}

// render formats a page as plain text, hyphenation off, for searching.
func render(t *testing.T, man, page string) string {
	t.Helper()
	cmd := exec.Command(man, "-l", filepath.Join("man", page))
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANWIDTH=1000", "MAN_KEEP_FORMATTING=0", "MANPAGER=cat", "PAGER=cat", "MANROFFOPT=-rHY=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("man -l %s: %v", page, err)
	}
	return regexp.MustCompile(`.\x08`).ReplaceAllString(string(out), "")
}

// TestCompletion sources the completion in bash with bash-completion's helpers stubbed and a fake
// gaoler on PATH whose status --json names two jails.
func TestCompletion(t *testing.T) {
	bash := testenv.RequireCommand(t, "bash")
	bin := t.TempDir()
	fake := `#!/bin/sh
case "$1 $2" in
"status --json") printf '{\n  "version": "0.1.0",\n  "reader": "blocking",\n  "jails": [\n    "sshd",\n    "nginx-auth"\n  ],\n  "events": ["Banned 192.0.2.7 in jail \\"x\\" [y]"]\n}\n' ;;
"banned sshd") printf '[\n  {\n    "jail": "sshd",\n    "address": "192.0.2.7"\n  }\n]\n' ;;
"trusted sshd") printf '[\n  {\n    "jail": "sshd",\n    "address": "198.51.100.4"\n  }\n]\n' ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "gaoler"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "gaoler.toml")
	if err := os.WriteFile(config, []byte("[filter.nginx-auth]\nfailregex = []\n  [filter.postfix-sasl]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ line, want string }{
		{"gaoler ", "status banned ban unban trust untrust trusted reload log test-filter check-config doctor metrics why watch --help"},
		{"gaoler st", "status"},
		{"gaoler status ", "sshd nginx-auth"},
		{"gaoler ban ", "sshd nginx-auth"},
		{"gaoler ban sshd ", ""},
		{"gaoler unban sshd ", "192.0.2.7"},
		{"gaoler unban --all ", "sshd nginx-auth"},
		{"gaoler log --jail ", "sshd nginx-auth"},
		{"gaoler log -", "-f --follow -n --lines --jail --since --directory --json"},
		{"gaoler log -n ", ""},
		{"gaoler test-filter --mode ", "normal ddos aggressive"},
		{"gaoler test-filter --config " + config + " ", "sshd nginx-auth postfix-sasl"},
		{"gaoler banned --", "--json"},
		{"gaoler trust ", "sshd nginx-auth"},
		{"gaoler trust sshd 192.0.2.1 --", "--for"},
		{"gaoler untrust sshd ", "198.51.100.4"},
		{"gaoler trusted --", "--json"},
		{"gaoler watch ", "sshd nginx-auth"},
		{"gaoler watch --", "--json"},
	}
	for _, tt := range tests {
		script := `
_init_completion() { COMPREPLY=(); cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
_filedir() { COMPREPLY=(FILES); }
source completion/gaoler
read -r -a COMP_WORDS <<<"$LINE"
[[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_gaoler
echo "${COMPREPLY[*]}"
`
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LINE="+tt.line)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v: %s", tt.line, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("%q completes to %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestInstallSources checks that every file debian/gaoler.install and the other lists name exists in
// the tree, so a package build does not fail late on a missing file.
func TestInstallSources(t *testing.T) {
	for _, list := range []string{"gaoler.install", "gaoler.manpages", "gaoler.examples"} {
		data, err := os.ReadFile(filepath.Join("debian", list))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			src := strings.Fields(line)[0]
			if strings.HasPrefix(src, "debian/build/") {
				continue // built by debian/rules
			}
			matches, _ := filepath.Glob(filepath.Join("..", src))
			if len(matches) == 0 {
				t.Errorf("%s: %s does not exist", list, src)
			}
		}
	}
	for _, script := range []string{"debian/gaoler.prerm", "debian/gaoler.postrm", "build-deb.sh"} {
		if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v: %s", script, err, out)
		}
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}
