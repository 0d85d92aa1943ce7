package doctor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/firewall"
	"github.com/gaoler/gaoler/internal/testenv"
)

// TestSystemHost runs the doctor's real host readers against real components: gaolerd's table built by
// the firewall package in a fresh network namespace (read back with nft), Debian's sshd listening there
// on a port the jail does not cover, and journal files written by systemd-journal-remote.
func TestSystemHost(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	sshd := "/usr/sbin/sshd"
	_, err := os.Stat(sshd)
	testenv.Require(t, err == nil, "needs openssh-server ("+sshd+")")
	ns, fd := testenv.NetNS(t)

	fw, err := firewall.NewNFTables("gaoler", firewall.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	if err := fw.Setup([]firewall.JailRules{{Name: "sshd", Protocol: "tcp", BlockType: "reject",
		Ports: []firewall.PortRange{{From: 22, To: 22}}}}); err != nil {
		t.Fatal(err)
	}

	// sshd on 127.0.0.1:2222 in the namespace.
	dir := t.TempDir()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "hostkey")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(fmt.Sprintf(
		"Port 2222\nListenAddress 127.0.0.1\nHostKey %s/hostkey\nUsePAM no\nPidFile %s/sshd.pid\n", dir, dir)), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	srv := exec.Command("ip", "netns", "exec", ns, sshd, "-D", "-f", filepath.Join(dir, "sshd_config"))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	// A journal with sshd entries from ssh.service, and one whose only "sshd" entries come from logger.
	now := time.Now()
	usec := uint64(now.Add(-time.Hour).UnixMicro())
	good, forged := filepath.Join(dir, "good"), filepath.Join(dir, "forged")
	os.Mkdir(good, 0o755)
	os.Mkdir(forged, 0o755)
	testenv.ExportToJournalDir(t, good, testenv.ExportEntry(usec, "_UID=0", "_COMM=sshd", "_SYSTEMD_UNIT=ssh.service",
		"SYSLOG_IDENTIFIER=sshd", "_PID=400", "MESSAGE=Failed password for root from 192.0.2.7 port 40000 ssh2"))
	testenv.ExportToJournalDir(t, forged, testenv.ExportEntry(usec, "_UID=1000", "_COMM=logger",
		"SYSLOG_IDENTIFIER=sshd", "_PID=401", "MESSAGE=Failed password for root from 192.0.2.8 port 40000 ssh2"))

	cfg, err := config.Parse("gaoler.toml", "[jail.sshd]\nenabled = true\nports = [\"ssh\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	host := &System{
		NFT:              []string{"ip", "netns", "exec", ns, "nft", "-j", "-t", "list", "ruleset"},
		JournalDirectory: good,
		DaemonInfo:       func() (Daemon, error) { return Daemon{Version: "test", Jails: []string{"sshd"}}, nil },
		NetNS:            "/run/netns/" + ns,
	}
	var ports []uint16
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ports, err = host.Listeners("sshd"); err == nil && len(ports) > 0 {
			break
		}
	}
	if len(ports) != 1 || ports[0] != 2222 {
		t.Fatalf("sshd's ports in the namespace: %v, %v; want [2222]", ports, err)
	}

	fs := Run(cfg, host, now)
	for _, c := range []struct {
		check  string
		status Status
		says   string
	}{
		{"table", OK, "is in the kernel"},
		{"chain input", OK, "hooked on input"},
		{"jail sshd: firewall", OK, "sets and rules in place"},
		{"jail sshd: ports", Fail, "sshd listens on port 2222"},
		{"jail sshd: journal", OK, "that jail sshd reads: 1"},
	} {
		if f := find(t, fs, c.check); f.Status != c.status || !strings.Contains(f.Message, c.says) {
			t.Errorf("%s: %s %q, want %s with %q", c.check, f.Status, f.Message, c.status, c.says)
		}
	}

	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	host.JournalDirectory = empty
	if f := find(t, Run(cfg, host, now), "jail sshd: journal"); f.Status != Warn || !strings.Contains(f.Message, "no journal entry of the last day") {
		t.Errorf("a journal without sshd entries: %s %q", f.Status, f.Message)
	}

	host.JournalDirectory = forged
	if f := find(t, Run(cfg, host, now), "jail sshd: journal"); f.Status != Fail || !strings.Contains(f.Message, "say they are sshd's: 1") {
		t.Errorf("forged-only journal: %s %q", f.Status, f.Message)
	}

	testenv.NSExec(t, ns, "nft", "delete", "table", "inet", "gaoler")
	if f := find(t, Run(cfg, host, now), "table"); f.Status != Fail {
		t.Errorf("table deleted: %s %q", f.Status, f.Message)
	}
}
