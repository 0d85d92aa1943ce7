package nspawn

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

const (
	// banMessageID is the MESSAGE_ID of gaolerd's ban entries (contract.md, "Daemon journal events").
	banMessageID = "b115fae2c6c44d2885a6d2f4a1572bdc"
	// reloadedMessageID is the MESSAGE_ID of gaolerd's "reloaded" entries.
	reloadedMessageID = "5315be068cb94b7a80ec6cf403af2b53"
	// configErrorMessageID is the MESSAGE_ID of gaolerd's "config error" entries.
	configErrorMessageID = "9bc0e233712f45208795aaba951114d5"
	// restoredMessageID is the MESSAGE_ID of gaolerd's "firewall restored" entries.
	restoredMessageID = "54ff4a2776d543e2ad0d7809d9cd02b4"

	attacker4 = "192.0.2.7"
	attacker6 = "2001:db8::7"
	// maxRetry is the sshd jail's maxretry in the test's drop-in.
	maxRetry = 3
)

// allMessageIDs are the MESSAGE_IDs of every event gaolerd logs (contract.md), each of which the
// catalog must explain.
var allMessageIDs = []string{
	"61a385ffb21f4b869834b9f02831d782", // started
	"fe307b7c18fd4fda99000c30ccb072d3", // stopped
	reloadedMessageID,
	configErrorMessageID,
	banMessageID,
	"4457d62bde5247c99d7a0a257e8c4e0b", // unban
	"39481af06893453786a1b3adaa85020c", // failure
	restoredMessageID,
}

// dropIn makes the sshd jail ban after maxRetry failures, and lets it ban addresses on lo: the
// attacker's addresses are this host's own, which ignoreself would protect.
var dropIn = fmt.Sprintf(`# gaoler's boot test
[jail.sshd]
maxretry = %d
bantime = "1h"
ignoreself = false
`, maxRetry)

// TestBootedPackage installs gaoler's .deb on a booted Debian 12 (systemd-nspawn) and checks the
// package, the unit, the daemon on the real system bus and a ban of real failed sshd logins, through
// restart, stop and purge.
func TestBootedPackage(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "systemd-nspawn")
	testenv.RequireCommand(t, "debootstrap")
	testenv.RequireCommand(t, "nsenter")
	testenv.RequireCommand(t, "dpkg-buildpackage")
	testenv.Require(t, overlaySupported(), "needs overlayfs (/proc/filesystems)")
	if testing.Short() {
		t.Skip("skipping the boot test in -short mode")
	}
	top := moduleRoot(t)
	timing := newTimer(t)

	root := os.Getenv("GAOLER_NSPAWN_ROOT")
	if root == "" {
		root = "/var/tmp/gaoler-nspawn-root"
	}
	// Building the root downloads ~100 MB from the Debian mirror: done when integration tests must
	// run (CI), or by hand with packaging/nspawn/mkroot.sh; otherwise the test skips without a root.
	if _, err := os.Stat(filepath.Join(root, ".gaoler-stamp")); err != nil && !testenv.Integration() {
		t.Skipf("skipping: no Debian root in %s; build it with packaging/nspawn/mkroot.sh, or set GAOLER_INTEGRATION=1 to have the test build it", root)
	}
	mkroot := exec.Command("sh", filepath.Join(top, "packaging/nspawn/mkroot.sh"), root)
	if out, err := mkroot.CombinedOutput(); err != nil {
		t.Fatalf("mkroot.sh: %v\n%s", err, out)
	} else {
		t.Logf("%s", strings.TrimSpace(string(out)))
	}
	timing.lap("root (mkroot.sh)")

	deb := buildDeb(t, top)
	timing.lap("package (build-deb.sh)")

	c := boot(t, root)
	timing.lap("booted")

	t.Run("install", func(t *testing.T) {
		copyFile(t, deb, filepath.Join(c.merged, "root", filepath.Base(deb)))
		out := c.run(t, 120*time.Second, "apt-get install -y -o Dpkg::Use-Pty=0 /root/"+filepath.Base(deb)+" 2>&1 </dev/null")
		t.Logf("apt install:\n%s", lastLines(out, 15))
		// The unit is enabled and started by the maintainer scripts (dh_installsystemd).
		if out, _ := c.exec(10*time.Second, "systemctl is-enabled gaolerd"); strings.TrimSpace(out) != "enabled" {
			t.Errorf("gaolerd after install: is-enabled %q", strings.TrimSpace(out))
		}
		if out, _ := c.exec(10*time.Second, "systemctl is-active gaolerd"); strings.TrimSpace(out) != "active" {
			t.Errorf("gaolerd not started by the package: is-active %q\n%s", strings.TrimSpace(out), c.diag("systemctl status gaolerd; journalctl -b -u gaolerd --no-pager"))
			c.run(t, 30*time.Second, "systemctl start gaolerd")
		}
		show := c.run(t, 10*time.Second, "systemctl show -p Type,NRestarts,ActiveState,SubState,StatusText,WatchdogUSec gaolerd")
		t.Logf("systemctl show:\n%s", show)
		for _, want := range []string{"Type=notify", "NRestarts=0", "ActiveState=active", "SubState=running"} {
			if !strings.Contains(show, want+"\n") {
				t.Errorf("systemctl show gaolerd: want %s", want)
			}
		}
		// The catalog is compiled by systemd's file trigger on /usr/lib/systemd/catalog.
		catalog, err := c.exec(10*time.Second, "journalctl --list-catalog")
		if err != nil {
			t.Errorf("journalctl --list-catalog: %v\n%s", err, catalog)
		}
		for _, id := range allMessageIDs {
			if !strings.Contains(catalog, id+" ") {
				t.Errorf("journalctl --list-catalog does not know %s", id)
			}
		}
		// The root has no man-db, so the Documentation= pages cannot be checked here.
		verify, err := c.exec(30*time.Second, "systemd-analyze verify --man=no gaolerd.service 2>&1")
		if err != nil || strings.TrimSpace(verify) != "" {
			t.Errorf("systemd-analyze verify gaolerd.service: %v\n%s", err, verify)
		}
		c.run(t, 20*time.Second, "gaolerd --check")
	})
	if t.Failed() {
		t.FailNow()
	}
	timing.lap("installed")

	t.Run("bus", func(t *testing.T) {
		intro := c.run(t, 10*time.Second, "busctl --system introspect io.github.gaoler.Gaoler1 /io/github/gaoler/Gaoler1")
		t.Logf("busctl introspect:\n%s", intro)
		for _, want := range []string{"io.github.gaoler.Gaoler1.Manager", "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Properties"} {
			if !strings.Contains(intro, want) {
				t.Errorf("introspection lacks %s", want)
			}
		}
		owner := c.run(t, 10*time.Second, "busctl --system status io.github.gaoler.Gaoler1 | grep -E '^(PID|Unit|Comm)='")
		if !strings.Contains(owner, "Unit=gaolerd.service") {
			t.Errorf("the bus name's owner is not gaolerd.service:\n%s", owner)
		}
		status := c.run(t, 10*time.Second, "gaoler status sshd")
		t.Logf("gaoler status sshd:\n%s", status)
		if !strings.Contains(status, "sshd") {
			t.Errorf("gaoler status sshd does not name the jail")
		}
	})

	t.Run("security", func(t *testing.T) {
		out, _ := c.exec(30*time.Second, "systemd-analyze security --no-pager gaolerd.service")
		t.Logf("systemd-analyze security gaolerd.service:\n%s", out)
		m := regexp.MustCompile(`Overall exposure level for gaolerd.service: ([0-9.]+) (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("no exposure level in systemd-analyze security's output")
			return
		}
		t.Logf("exposure: %s %s", m[1], m[2])
	})

	t.Run("sandbox", func(t *testing.T) {
		// What the unit asks for is what the running daemon gets.
		pid := strings.TrimSpace(c.run(t, 10*time.Second, "systemctl show -p MainPID --value gaolerd"))
		status := c.run(t, 10*time.Second, "cat /proc/"+pid+"/status")
		for field, want := range map[string]string{
			"CapBnd":     "0000000000001000", // CAP_NET_ADMIN only
			"CapEff":     "0000000000001000",
			"NoNewPrivs": "1",
			"Seccomp":    "2",
		} {
			if got := statusField(status, field); len(got) != 1 || got[0] != want {
				t.Errorf("gaolerd's %s = %v, want %s", field, got, want)
			}
		}
		mounts := c.run(t, 10*time.Second, "cat /proc/"+pid+"/mountinfo")
		opts := map[string]string{} // mount point -> its mount options
		for _, line := range strings.Split(mounts, "\n") {
			if f := strings.Fields(line); len(f) > 5 {
				opts[f[4]] = f[5]
			}
		}
		if _, ok := opts["/"]; !ok {
			t.Errorf("no / in gaolerd's mountinfo")
		}
		for _, dir := range []string{"/", "/usr", "/etc"} {
			if o, ok := opts[dir]; ok && !strings.HasPrefix(o, "ro") {
				t.Errorf("%s is writable for gaolerd (%s)", dir, o)
			}
		}
		if o := opts["/var/lib/gaoler"]; !strings.HasPrefix(o, "rw") {
			t.Errorf("the state directory /var/lib/gaoler is not a writable mount for gaolerd: %q", o)
		}
		for _, dir := range []string{"/tmp", "/home", "/dev"} {
			if _, ok := opts[dir]; !ok {
				t.Errorf("gaolerd has no mount of its own on %s (PrivateTmp, ProtectHome, PrivateDevices)", dir)
			}
		}
		if t.Failed() {
			t.Logf("gaolerd's mountinfo:\n%s", mounts)
		}
	})

	t.Run("reload", func(t *testing.T) {
		// A broken drop-in: systemctl reload fails visibly (ExecReload runs gaolerd --check first),
		// naming the file and line in systemctl status; gaolerd is not signalled, keeps its running
		// config and its bans.
		const kept = "198.51.100.77"
		c.run(t, 30*time.Second, "gaoler ban sshd "+kept+" --for 1h")
		bannedUntil := elementExpiry(t, c, "sshd_v4", kept)
		c.run(t, 10*time.Second, "printf '[jail.sshd]\\nmaxretry = \"three\"\\n' >/etc/gaoler/jail.d/80-broken.toml")
		out, err := c.exec(30*time.Second, "systemctl reload gaolerd")
		if err == nil {
			t.Errorf("systemctl reload gaolerd with a broken drop-in exited 0:\n%s", out)
		}
		t.Logf("systemctl reload gaolerd with a broken drop-in: %v\n%s", err, strings.TrimSpace(out))
		// journald takes the check's stderr from a stream: give it a moment to show in the status.
		if _, err := c.exec(15*time.Second, pollScript(10*time.Second, "systemctl status --no-pager --lines=20 gaolerd | grep -qF 80-broken.toml:2")); err != nil {
			st, _ := c.exec(10*time.Second, "systemctl status --no-pager --lines=20 gaolerd")
			t.Errorf("systemctl status gaolerd after the refused reload does not name 80-broken.toml:2:\n%s", st)
		}
		// gaoler reload asks the daemon itself, which refuses the config the same way.
		out, err = c.exec(30*time.Second, "gaoler reload")
		if err == nil || !strings.Contains(out, "80-broken.toml:2") {
			t.Errorf("gaoler reload with a broken drop-in: %v\n%s", err, out)
		}
		bad := c.waitFor(t, 10*time.Second, "config error entry",
			"journalctl -b -u gaolerd -o cat MESSAGE_ID="+configErrorMessageID+" | grep .")
		if !strings.Contains(bad, "80-broken.toml:2") {
			t.Errorf("the daemon's config error does not name 80-broken.toml:2:\n%s", bad)
		}
		c.run(t, 10*time.Second, "rm /etc/gaoler/jail.d/80-broken.toml && systemctl is-active gaolerd")
		if show := c.run(t, 10*time.Second, "systemctl show -p NRestarts,MainPID gaolerd"); !strings.Contains(show, "NRestarts=0\n") {
			t.Errorf("gaolerd restarted on a refused reload:\n%s", show)
		}
		if got := elementExpiry(t, c, "sshd_v4", kept); !bannedUntil.IsZero() {
			if d := got.Sub(bannedUntil); d < -3*time.Second || d > 3*time.Second {
				t.Errorf("the ban of %s ends at %v after the refused reloads, %v from before", kept, got.Format(time.TimeOnly), d.Round(time.Second))
			}
		}
		c.run(t, 30*time.Second, "gaoler unban sshd "+kept)
		if st := c.run(t, 10*time.Second, "gaoler status sshd"); !strings.Contains(st, "Total failed") {
			t.Errorf("gaoler status sshd after a refused reload:\n%s", st)
		}

		c.run(t, 10*time.Second, fmt.Sprintf("cat >/etc/gaoler/jail.d/90-boot-test.toml <<'EOF'\n%sEOF", dropIn))
		c.run(t, 20*time.Second, "gaoler check-config")
		c.run(t, 30*time.Second, "systemctl reload gaolerd")
		c.waitFor(t, 10*time.Second, "reloaded entry", "journalctl -b -u gaolerd -o cat MESSAGE_ID="+reloadedMessageID+" | grep .")
		show := c.run(t, 10*time.Second, "systemctl show -p ActiveState,NRestarts gaolerd")
		if !strings.Contains(show, "ActiveState=active\n") || !strings.Contains(show, "NRestarts=0\n") {
			t.Errorf("after reload:\n%s", show)
		}
		status := c.run(t, 10*time.Second, "gaoler status sshd")
		t.Logf("gaoler status sshd after reload:\n%s", status)
	})
	if t.Failed() {
		t.FailNow()
	}
	timing.lap("reloaded")

	var banEnds time.Time // when the kernel lifts attacker4's ban
	t.Run("ban", func(t *testing.T) {
		c.run(t, 10*time.Second, "ip addr add "+attacker4+"/32 dev lo && ip addr add "+attacker6+"/128 dev lo nodad")
		c.run(t, 10*time.Second, "useradd -m victim && echo 'victim:Correct-Horse-7' | chpasswd")
		c.run(t, 30*time.Second, "systemctl start ssh.service")
		// The right password works before the ban, so the failures below are the password's fault.
		c.waitFor(t, 10*time.Second, "sshd accepts a login", sshCmd(attacker4, "Correct-Horse-7"))
		// Watch the Banned signals on the system bus while the attacks go on.
		c.run(t, 10*time.Second, "busctl --system monitor --match \"type='signal',interface='io.github.gaoler.Gaoler1.Manager'\" "+
			">/root/signals.txt 2>&1 </dev/null & echo $! >/root/monitor.pid")
		for _, addr := range []string{attacker4, attacker6} {
			set := "sshd_v4"
			if addr == attacker6 {
				set = "sshd_v6"
			}
			// maxretry failed logins at once (sshd delays each failure by 2s), then the ban must
			// follow within a few seconds; a second round covers a slow start of sshd.
			banned := false
			for round := 1; round <= 2 && !banned; round++ {
				attempts := ""
				for i := 0; i < maxRetry; i++ {
					attempts += "(" + sshCmd(addr, "wrong-password") + " && echo LOGGED-IN) & "
				}
				out, _ := c.exec(30*time.Second, attempts+"wait")
				if strings.Contains(out, "LOGGED-IN") {
					t.Fatalf("login with a wrong password from %s succeeded:\n%s", addr, out)
				}
				_, err := c.exec(15*time.Second, pollScript(10*time.Second, "nft list set inet gaoler "+set+" | grep -qF '"+addr+"'"))
				banned = err == nil
			}
			if !banned {
				t.Fatalf("%s not banned after %d failed logins\n%s", addr, 2*maxRetry,
					c.diag("nft list table inet gaoler; gaoler status sshd; journalctl -b -u ssh.service -u gaolerd --no-pager | tail -n 40"))
			}
			if addr == attacker4 {
				banEnds = elementExpiry(t, c, set, addr)
			}
			elements := c.run(t, 10*time.Second, "nft list set inet gaoler "+set)
			t.Logf("nft list set inet gaoler %s:\n%s", set, elements)
			if !regexp.MustCompile(regexp.QuoteMeta(addr) + `[^,\n]* expires `).MatchString(elements) {
				t.Errorf("the element for %s has no kernel timeout", addr)
			}
			// The ban is enforced: sshd is no longer reachable from the attacker's address.
			if out, err := c.exec(15*time.Second, sshCmd(addr, "Correct-Horse-7")); err == nil {
				t.Errorf("login from banned %s succeeded:\n%s", addr, out)
			} else if !strings.Contains(out, "refused") {
				t.Errorf("connection from banned %s: want refused (blocktype reject), got:\n%s", addr, out)
			}
		}

		checkSSHDFailures(t, c)

		signals := c.waitFor(t, 5*time.Second, "Banned signals", "grep -cw 'Member=Banned' /root/signals.txt | grep -qx 2 && cat /root/signals.txt")
		c.run(t, 10*time.Second, "kill $(cat /root/monitor.pid)")
		for _, addr := range []string{attacker4, attacker6} {
			if !strings.Contains(signals, `STRING "`+addr+`"`) {
				t.Errorf("no Banned signal for %s on the system bus:\n%s", addr, signals)
			}
		}
		counters := c.run(t, 10*time.Second, "busctl --system get-property io.github.gaoler.Gaoler1 /io/github/gaoler/Gaoler1/jail/sshd "+
			"io.github.gaoler.Gaoler1.Jail CurrentlyBanned TotalBanned TotalFailed")
		t.Logf("jail sshd's CurrentlyBanned, TotalBanned, TotalFailed:\n%s", counters)
		// TotalBanned counts the reload test's manual ban too.
		if f := strings.Fields(counters); len(f) != 6 || f[1] != "2" || f[3] != "3" {
			t.Errorf("jail sshd's counters on the bus: %q, want 2 banned now, 3 in total", counters)
		}

		banned := c.run(t, 10*time.Second, "gaoler banned")
		t.Logf("gaoler banned:\n%s", banned)
		for _, addr := range []string{attacker4, attacker6} {
			if !strings.Contains(banned, addr) {
				t.Errorf("gaoler banned does not list %s", addr)
			}
		}

		entries := journalJSON(t, c, "journalctl -b -u gaolerd -o json MESSAGE_ID="+banMessageID)
		var ban map[string]any
		for _, e := range entries {
			if e["GAOLER_ADDRESS"] == attacker4 {
				ban = e
			}
		}
		if ban == nil {
			t.Errorf("no ban entry (MESSAGE_ID=%s) for %s in gaolerd's journal: %v", banMessageID, attacker4, entries)
		} else {
			t.Logf("ban entry: MESSAGE=%q PRIORITY=%v GAOLER_JAIL=%v GAOLER_BANTIME=%v GAOLER_BAN_COUNT=%v _SYSTEMD_UNIT=%v",
				ban["MESSAGE"], ban["PRIORITY"], ban["GAOLER_JAIL"], ban["GAOLER_BANTIME"], ban["GAOLER_BAN_COUNT"], ban["_SYSTEMD_UNIT"])
			for k, v := range map[string]string{"GAOLER_JAIL": "sshd", "PRIORITY": "5", "SYSLOG_IDENTIFIER": "gaolerd",
				"GAOLER_BANTIME": "3600", "GAOLER_BAN_COUNT": "1", "_SYSTEMD_UNIT": "gaolerd.service"} {
				if ban[k] != v {
					t.Errorf("ban entry: %s=%v, want %s", k, ban[k], v)
				}
			}
		}
		explained := c.run(t, 10*time.Second, "journalctl -b -x -u gaolerd --no-pager MESSAGE_ID="+banMessageID)
		t.Logf("journalctl -x:\n%s", lastLines(explained, 20))
		if !strings.Contains(explained, "Subject: Banned "+attacker4+" in jail sshd") {
			t.Errorf("journalctl -x does not show the catalog text of the ban entry")
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	timing.lap("banned over IPv4 and IPv6")

	t.Run("client", func(t *testing.T) {
		// gaoler log reads the ban entries from the journal by MESSAGE_ID, without the daemon.
		log := c.run(t, 10*time.Second, "gaoler log -n 10 --jail sshd")
		t.Logf("gaoler log:\n%s", log)
		if !strings.Contains(log, "Banned "+attacker4) {
			t.Errorf("gaoler log does not show the ban of %s", attacker4)
		}
		// Any user may read (the D-Bus policy); only root may change bans or reload.
		if out, err := c.exec(10*time.Second, "runuser -u victim -- gaoler banned sshd"); err != nil || !strings.Contains(out, attacker4) {
			t.Errorf("gaoler banned as a user: %v\n%s", err, out)
		}
		for _, args := range []string{"ban sshd 192.0.2.99", "unban sshd " + attacker4, "reload"} {
			out, err := c.exec(10*time.Second, "runuser -u victim -- gaoler "+args)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("gaoler %s as a user: %v, want exit status 1\n%s", args, err, out)
			} else {
				t.Logf("gaoler %s as a user: %s", args, strings.TrimSpace(out))
			}
		}
		c.run(t, 10*time.Second, "nft list set inet gaoler sshd_v4 | grep -qF "+attacker4)
		// The bash completion script at least parses.
		c.run(t, 10*time.Second, "bash -n /usr/share/bash-completion/completions/gaoler")
	})

	t.Run("metrics", func(t *testing.T) { checkMetrics(t, c) })
	if t.Failed() {
		t.FailNow()
	}
	timing.lap("metrics")

	t.Run("mail", func(t *testing.T) { checkMail(t, c) })
	if t.Failed() {
		t.FailNow()
	}
	timing.lap("mail through exim4")

	t.Run("restart", func(t *testing.T) {
		before := len(journalJSON(t, c, "journalctl -b -u gaolerd -o json MESSAGE_ID="+banMessageID))
		c.run(t, 30*time.Second, "systemctl restart gaolerd")
		c.run(t, 10*time.Second, "systemctl is-active gaolerd")
		keptInKernel(t, c, banEnds)
		c.run(t, 10*time.Second, "nft list set inet gaoler sshd_v6 | grep -qF "+attacker6)
		banned := c.run(t, 10*time.Second, "gaoler banned sshd")
		if !strings.Contains(banned, attacker4) || !strings.Contains(banned, attacker6) {
			t.Errorf("after restart, gaoler banned:\n%s", banned)
		}
		// A restart re-installs the bans it had; it does not announce them again.
		entries := journalJSON(t, c, "journalctl -b -u gaolerd -o json MESSAGE_ID="+banMessageID)
		if n := len(entries); n != before {
			t.Errorf("after restart: %d ban entries, want the %d from before", n, before)
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		// Reinstalling runs the upgrade path of the maintainer scripts (prerm upgrade, postinst
		// configure with the old version): gaolerd restarts, the table and its bans stay.
		out := c.run(t, 60*time.Second, "dpkg -i /root/"+filepath.Base(deb)+" 2>&1")
		t.Logf("dpkg -i (reinstall):\n%s", lastLines(out, 8))
		c.run(t, 10*time.Second, "systemctl is-active gaolerd")
		keptInKernel(t, c, banEnds)
		banned := c.run(t, 10*time.Second, "gaoler banned sshd")
		if !strings.Contains(banned, attacker4) || !strings.Contains(banned, attacker6) {
			t.Errorf("after reinstall, gaoler banned:\n%s", banned)
		}
	})

	t.Run("reboot", func(t *testing.T) {
		// sshd starts at boot too, after gaolerd (the unit orders gaolerd before network-pre.target).
		c.run(t, 10*time.Second, "systemctl enable --quiet ssh.service")
		c.reboot(t)
		show := c.run(t, 10*time.Second, "systemctl show -p ActiveState,NRestarts,ActiveEnterTimestampMonotonic gaolerd")
		if !strings.Contains(show, "ActiveState=active\n") || !strings.Contains(show, "NRestarts=0\n") {
			t.Errorf("gaolerd after boot:\n%s\n%s", show, c.diag("journalctl -b -u gaolerd --no-pager"))
		}
		// The unit promises to be up before network-pre.target, and so before what is ordered after
		// network.target (sshd), but only when network.target is part of the boot: this root has no
		// network manager to pull it in, so sshd may start first here, which is only logged (gaolerd
		// reads the failures it missed from the journal anyway).
		up := map[string]uint64{}
		for _, unit := range []string{"network-pre.target", "network.target", "ssh.service"} {
			other := c.run(t, 10*time.Second, "systemctl show -p ActiveEnterTimestampMonotonic "+unit)
			up[unit] = monotonic(other)
			t.Logf("after boot: gaolerd up at %dus, %s at %dus", monotonic(show), unit, up[unit])
		}
		if g := monotonic(show); g == 0 || g > up["network-pre.target"] {
			t.Errorf("gaolerd was not up before network-pre.target")
		} else if up["network.target"] != 0 && g > up["ssh.service"] {
			t.Errorf("gaolerd was not up before ssh.service, with network.target in the boot")
		}
		// The new network namespace came with an empty ruleset: gaolerd rebuilt its table and put
		// the bans back from its state directory, with their remaining time.
		c.waitFor(t, 10*time.Second, "bans restored after reboot",
			"nft list set inet gaoler sshd_v4 | grep -qF "+attacker4+" && nft list set inet gaoler sshd_v6 | grep -qF "+attacker6)
		// Put back by gaolerd, with the time that was left.
		keptInKernel(t, c, banEnds)
		restored := c.run(t, 10*time.Second, "journalctl -b -u gaolerd -o cat MESSAGE_ID="+restoredMessageID)
		if !strings.Contains(restored, "2 bans") {
			t.Errorf("no \"firewall restored: 2 bans\" entry after reboot: %q", restored)
		}
		// gaolerd started before the system bus; it took its name once dbus was up.
		c.waitFor(t, 10*time.Second, "gaolerd on the bus after boot", "busctl --system status io.github.gaoler.Gaoler1 >/dev/null")
		banned := c.run(t, 10*time.Second, "gaoler banned sshd")
		t.Logf("gaoler banned after reboot:\n%s", banned)
		if !strings.Contains(banned, attacker4) || !strings.Contains(banned, attacker6) {
			t.Errorf("after reboot, gaoler banned does not list both addresses")
		}
		// gaolerd-metrics.socket, enabled by the metrics subtest, was up before gaolerd and passed to it.
		if text := scrape(t, c); !strings.Contains(text, `gaoler_bans_active{jail="sshd"} 2`) {
			t.Errorf("the metrics endpoint after reboot:\n%s", lastLines(text, 20))
		}
		t.Logf("%s", c.diag("journalctl -b -u gaolerd --no-pager -o short-monotonic"))
	})
	timing.lap("rebooted, bans restored")

	t.Run("stop", func(t *testing.T) {
		c.run(t, 30*time.Second, "systemctl stop gaolerd")
		if out, _ := c.exec(10*time.Second, "systemctl is-active gaolerd"); strings.TrimSpace(out) != "inactive" {
			t.Errorf("after stop: is-active %q", strings.TrimSpace(out))
		}
		out := c.run(t, 10*time.Second, "systemctl show -p Result,ExecMainStatus gaolerd")
		if !strings.Contains(out, "Result=success\n") || !strings.Contains(out, "ExecMainStatus=0\n") {
			t.Errorf("gaolerd did not stop cleanly:\n%s", out)
		}
		// The bans stay in the kernel while the daemon is down.
		keptInKernel(t, c, banEnds)
		// The client does not start the daemon (it calls with NO_AUTO_START) ...
		if out, err := c.exec(10*time.Second, "gaoler status"); err == nil {
			t.Errorf("gaoler status succeeded with gaolerd stopped:\n%s", out)
		} else {
			t.Logf("gaoler status with gaolerd stopped: %v: %s", err, strings.TrimSpace(out))
		}
	})

	t.Run("activation", func(t *testing.T) {
		// ... but any other caller of the name starts gaolerd.service through D-Bus activation.
		c.run(t, 30*time.Second, "busctl --system call io.github.gaoler.Gaoler1 /io/github/gaoler/Gaoler1 org.freedesktop.DBus.Peer Ping")
		c.waitFor(t, 10*time.Second, "gaolerd activated by the bus", "systemctl is-active gaolerd")
		banned := c.run(t, 10*time.Second, "gaoler banned sshd")
		if !strings.Contains(banned, attacker4) || !strings.Contains(banned, attacker6) {
			t.Errorf("after activation, gaoler banned:\n%s", banned)
		}
	})

	t.Run("purge", func(t *testing.T) {
		// The drop-in is the administrator's own file, which purging leaves in place (and with it
		// /etc/gaoler/jail.d); remove it first, as an administrator done with gaoler would.
		c.run(t, 10*time.Second, "rm /etc/gaoler/jail.d/90-boot-test.toml")
		out := c.run(t, 60*time.Second, "apt-get purge -y -o Dpkg::Use-Pty=0 gaoler 2>&1 </dev/null")
		t.Logf("apt purge:\n%s", lastLines(out, 10))
		for _, path := range []string{"/etc/gaoler", "/var/lib/gaoler", "/lib/systemd/system/gaolerd.service",
			"/usr/sbin/gaolerd", "/usr/bin/gaoler", "/usr/share/dbus-1/system.d/io.github.gaoler.Gaoler1.conf"} {
			if _, err := os.Lstat(filepath.Join(c.merged, path)); err == nil {
				t.Errorf("%s is left after purge", path)
			}
		}
		if out, err := c.exec(10*time.Second, "systemctl cat gaolerd.service"); err == nil {
			t.Errorf("systemd still knows gaolerd.service after purge:\n%s", out)
		}
		// Removing the package removes its table (prerm: gaolerd --flush-firewall).
		if out, err := c.exec(10*time.Second, "nft list table inet gaoler"); err == nil {
			t.Errorf("table inet gaoler is left after purge:\n%s", out)
		}
		if out, _ := c.exec(10*time.Second, "dpkg-query -W -f '${Status}' gaoler"); strings.Contains(out, "installed") || strings.Contains(out, "config-files") {
			t.Errorf("dpkg status after purge: %s", out)
		}
	})
	timing.lap("restart, stop, activation, purge")

	// What gaolerd and the bus said at warning level or worse during the whole run, for the record.
	t.Logf("%s", c.diag("journalctl --no-pager -p warning -u gaolerd -u dbus"))
}

// sshCmd is a shell command that logs in as victim from addr to addr (on lo) with a password.
func sshCmd(addr, password string) string {
	return "sshpass -p '" + password + "' ssh -n -b " + addr +
		" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" +
		" -o PubkeyAuthentication=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1" +
		" -o ConnectTimeout=5 victim@" + addr + " true 2>&1"
}

// keptInKernel checks that attacker4 is still banned in the kernel and that its ban ends when it
// ended before (within 3s): a restart may re-create the element (gaolerd replaces its table in one
// transaction, re-adding each ban with the time left) but must neither lift nor lengthen the ban.
func keptInKernel(t *testing.T, c *container, want time.Time) {
	t.Helper()
	got := elementExpiry(t, c, "sshd_v4", attacker4)
	if d := got.Sub(want); d < -3*time.Second || d > 3*time.Second {
		t.Errorf("%s's ban now ends at %v, %v from when it ended before (%v)", attacker4, got.Format(time.TimeOnly), d.Round(time.Second), want.Format(time.TimeOnly))
	}
}

// elementExpiry returns when addr's element in the set expires (now + the "expires" that nft
// prints), or the zero time if it is not in the set.
func elementExpiry(t *testing.T, c *container, set, addr string) time.Time {
	t.Helper()
	out, err := c.exec(10*time.Second, "nft list set inet gaoler "+set)
	now := time.Now()
	if err != nil {
		t.Errorf("nft list set inet gaoler %s: %v\n%s", set, err, out)
		return time.Time{}
	}
	m := regexp.MustCompile(regexp.QuoteMeta(addr) + ` timeout \S+ expires (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("%s not in set %s:\n%s", addr, set, out)
		return time.Time{}
	}
	d, err := testenv.NFTDuration(m[1])
	if err != nil {
		t.Error(err)
		return time.Time{}
	}
	return now.Add(d)
}

// monotonic returns ActiveEnterTimestampMonotonic from systemctl show's output, or 0.
func monotonic(show string) uint64 {
	m := regexp.MustCompile(`ActiveEnterTimestampMonotonic=(\d+)`).FindStringSubmatch(show)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// pollScript is a shell loop that runs cond every 100ms until it succeeds, for at most d.
func pollScript(d time.Duration, cond string) string {
	return fmt.Sprintf("i=0; until %s; do i=$((i+1)); [ $i -ge %d ] && exit 1; sleep 0.1; done", cond, int(d/(100*time.Millisecond)))
}

// checkSSHDFailures checks that the failed logins are in the journal as entries of ssh.service
// (_SYSTEMD_UNIT=ssh.service, recorded by journald), which is what the sshd jail's match trusts.
func checkSSHDFailures(t *testing.T, c *container) {
	t.Helper()
	entries := journalJSON(t, c, "journalctl -b -u ssh.service -o json")
	failures := map[string]int{}
	for _, e := range entries {
		msg, _ := e["MESSAGE"].(string)
		if !strings.HasPrefix(msg, "Failed password for victim from ") {
			continue
		}
		if e["_SYSTEMD_UNIT"] != "ssh.service" || e["_UID"] != "0" {
			t.Errorf("failure entry not from ssh.service as root: _SYSTEMD_UNIT=%v _UID=%v _COMM=%v", e["_SYSTEMD_UNIT"], e["_UID"], e["_COMM"])
		}
		for _, addr := range []string{attacker4, attacker6} {
			if strings.Contains(msg, " from "+addr+" port ") {
				failures[addr]++
			}
		}
	}
	t.Logf("failed passwords in ssh.service's journal: %v", failures)
	for _, addr := range []string{attacker4, attacker6} {
		if failures[addr] < maxRetry {
			t.Errorf("%d failures from %s in journalctl -u ssh.service, want >= %d", failures[addr], addr, maxRetry)
		}
	}
}

// journalJSON runs a journalctl -o json command in the container and decodes its entries.
func journalJSON(t *testing.T, c *container, cmd string) []map[string]any {
	t.Helper()
	out := c.run(t, 20*time.Second, cmd+" --no-pager")
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, sc.Text())
		}
		entries = append(entries, e)
	}
	return entries
}

// diag runs a diagnostic script in the container and returns its output, errors included.
func (c *container) diag(script string) string {
	out, err := c.exec(20*time.Second, script)
	if err != nil {
		out += fmt.Sprintf("(%v)", err)
	}
	return "--- " + script + " ---\n" + out
}

// buildDeb builds gaoler's package with packaging/build-deb.sh into a temporary directory and returns
// the .deb's path. GAOLER_DEB names a prebuilt package to use instead.
func buildDeb(t *testing.T, top string) string {
	t.Helper()
	if deb := os.Getenv("GAOLER_DEB"); deb != "" {
		if _, err := os.Stat(deb); err != nil {
			t.Fatalf("GAOLER_DEB: %v", err)
		}
		return deb
	}
	cmd := exec.Command("bash", filepath.Join(top, "packaging/build-deb.sh"))
	cmd.Dir = top
	cmd.Env = append(os.Environ(), "DIST="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("build-deb.sh printed no .deb path:\n%s", out)
	}
	t.Logf("package: %s", filepath.Base(deb))
	return deb
}

// moduleRoot returns the directory holding go.mod, found from the working directory up.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// overlaySupported reports whether the kernel knows overlayfs.
func overlaySupported() bool {
	b, err := os.ReadFile("/proc/filesystems")
	return err == nil && strings.Contains(string(b), "\toverlay\n")
}

// copyFile copies a regular file.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// timer logs how long each step took, and the total.
type timer struct {
	t           *testing.T
	start, last time.Time
}

// newTimer starts the clock of a test's timings.
func newTimer(t *testing.T) *timer {
	now := time.Now()
	return &timer{t: t, start: now, last: now}
}

// lap logs the time since the previous lap.
func (tm *timer) lap(step string) {
	now := time.Now()
	tm.t.Logf("timing: %-42s %7v (total %v)", step, now.Sub(tm.last).Round(time.Millisecond), now.Sub(tm.start).Round(time.Millisecond))
	tm.last = now
}
