package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gaoler/gaoler/internal/testenv"
)

// installedFiles are the paths the package must install (SPEC "Files a package installs").
var installedFiles = []string{
	"/usr/sbin/gaolerd",
	"/usr/bin/gaoler",
	"/etc/gaoler/gaoler.toml",
	"/etc/gaoler/jail.d",
	"/lib/systemd/system/gaolerd.service",
	"/lib/systemd/system/gaolerd-metrics.socket",
	"/usr/share/dbus-1/system.d/io.github.gaoler.Gaoler1.conf",
	"/usr/share/dbus-1/system-services/io.github.gaoler.Gaoler1.service",
	"/usr/lib/systemd/catalog/gaoler.catalog",
	"/usr/share/man/man8/gaolerd.8.gz",
	"/usr/share/man/man1/gaoler.1.gz",
	"/usr/share/man/man5/gaoler.toml.5.gz",
	"/usr/share/bash-completion/completions/gaoler",
	"/usr/share/gaoler/contrib/filters/nginx-auth.toml",
	"/usr/share/doc/gaoler/examples/50-example.toml.example",
	"/usr/share/doc/gaoler/copyright",
}

// buildDeb returns the .deb to test: $GAOLER_DEB when make deb already built it, else one built now
// by build-deb.sh from binaries compiled with the test's (warm) build cache.
func buildDeb(t *testing.T) string {
	t.Helper()
	if deb := os.Getenv("GAOLER_DEB"); deb != "" {
		return deb
	}
	testenv.RequireCommand(t, "dpkg-buildpackage")
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/gaolerd", "./cmd/gaoler")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command("./build-deb.sh")
	// noautodbgsym: the test has no use for the -dbgsym package, and compressing it is slow.
	cmd.Env = append(os.Environ(), "GAOLER_BINDIR="+bin, "DIST="+t.TempDir(), "DEB_BUILD_OPTIONS=noautodbgsym")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}

func installed() bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "gaoler").Output()
	return err == nil && strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed")
}

// TestDebInstallPurge builds the package, installs it with dpkg on this machine, checks the installed
// files, unit, config and catalog, then purges it and checks that nothing is left. dpkg runs inside a
// fresh network namespace, so the maintainer scripts' firewall cleanup (gaolerd --flush-firewall on
// removal) cannot touch the host's ruleset. Without systemd as PID 1 the scripts start no daemon.
func TestDebInstallPurge(t *testing.T) {
	// It changes this machine's dpkg database, so it never runs merely because go test runs as root.
	testenv.Require(t, testenv.Integration(), "installs a package on this machine")
	testenv.RequireRoot(t)
	for _, c := range []string{"dpkg", "dpkg-query", "systemd-analyze", "journalctl", "ip"} {
		testenv.RequireCommand(t, c)
	}
	if installed() {
		t.Fatal("gaoler is already installed on this machine; purge it first (dpkg --purge gaoler)")
	}
	deb := buildDeb(t)
	ns, _ := testenv.NetNS(t)
	t.Cleanup(func() {
		if installed() {
			testenv.NSRun(ns, "dpkg", "--purge", "gaoler")
		}
	})

	testenv.NSExec(t, ns, "dpkg", "-i", deb)

	for _, f := range installedFiles {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	conffiles, err := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", "gaoler").Output()
	if err != nil || !strings.Contains(string(conffiles), "/etc/gaoler/gaoler.toml ") {
		t.Errorf("/etc/gaoler/gaoler.toml is not a conffile: %q %v", conffiles, err)
	}

	// The installed unit, with its real executable and man pages.
	verify := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/gaolerd.service")
	verify.Dir = t.TempDir()
	if out, err := verify.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The metrics socket is shipped disabled: nothing links it into a target.
	if links, _ := filepath.Glob("/etc/systemd/system/*/gaolerd-metrics.socket"); len(links) > 0 {
		t.Errorf("gaolerd-metrics.socket is enabled by the package: %v", links)
	}
	if out, err := exec.Command("/usr/sbin/gaolerd", "--check").CombinedOutput(); err != nil {
		t.Errorf("gaolerd --check on the installed config: %v\n%s", err, out)
	}
	if out, err := exec.Command("/usr/bin/gaoler", "check-config").CombinedOutput(); err != nil {
		t.Errorf("gaoler check-config on the installed config: %v\n%s", err, out)
	}

	// systemd's file trigger on /usr/lib/systemd/catalog has compiled the catalog.
	list, err := exec.Command("journalctl", "--list-catalog").Output()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v", err)
	}
	for _, id := range messageIDs(t) {
		if !strings.Contains(string(list), id) {
			t.Errorf("journalctl --list-catalog does not know %s after installation", id)
		}
	}

	// State the daemon would have written, which purge must remove.
	if err := os.MkdirAll("/var/lib/gaoler", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/var/lib/gaoler/checkpoint.json", []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}

	testenv.NSExec(t, ns, "dpkg", "--purge", "gaoler")

	if installed() {
		t.Error("gaoler still installed after dpkg --purge")
	}
	for _, f := range append(installedFiles, "/etc/gaoler", "/var/lib/gaoler", "/usr/share/gaoler", "/usr/share/doc/gaoler") {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s is left after purge", f)
		}
	}
	if links, _ := filepath.Glob("/etc/systemd/system/*/gaolerd.service"); len(links) > 0 {
		t.Errorf("unit symlinks left after purge: %v", links)
	}
	list, err = exec.Command("journalctl", "--list-catalog").Output()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v", err)
	}
	for _, id := range messageIDs(t) {
		if strings.Contains(string(list), id) {
			t.Errorf("the catalog database still knows %s after purge", id)
		}
	}
}
