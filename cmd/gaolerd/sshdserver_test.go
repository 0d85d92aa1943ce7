package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// sshdPath is Debian's sshd, which the end-to-end tests run in a server namespace.
const sshdPath = "/usr/sbin/sshd"

// startSSHD runs Debian's sshd in the pair's server namespace, listening on port 22 of its IPv4 and
// IPv6 addresses with a fresh host key in dir, password logins on and PAM off; extra is appended to
// its sshd_config. It is killed at the end of the test.
func startSSHD(t *testing.T, pair testenv.Pair, dir, extra string) {
	t.Helper()
	_, err := os.Stat(sshdPath)
	testenv.Require(t, err == nil, "needs openssh-server ("+sshdPath+")")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "hostkey")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	sshdConfig := fmt.Sprintf(`Port 22
ListenAddress %s
ListenAddress %s
HostKey %s/hostkey
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
PidFile %s/sshd.pid
LogLevel INFO
%s
`, pair.ServerV4, pair.ServerV6, dir, dir, extra)
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(sshdConfig), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	srv := exec.Command("ip", "netns", "exec", pair.Server, sshdPath, "-D", "-f", filepath.Join(dir, "sshd_config"))
	srvOut := &lockedWriter{b: new(strings.Builder)}
	srv.Stdout, srv.Stderr = srvOut, srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if !waitFor(10*time.Second, func() bool {
		_, err := testenv.NSRun(pair.Server, "bash", "-c", "</dev/tcp/"+pair.ServerV4.String()+"/22")
		return err == nil
	}) {
		lockedMu.Lock()
		defer lockedMu.Unlock()
		t.Fatalf("sshd did not listen: %s", srvOut.b.String())
	}
}
