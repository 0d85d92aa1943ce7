package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// The end-to-end tests run the real gaolerd binary inside a network namespace, against the real
// journald, and look at the kernel's nftables sets from inside that namespace.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds gaolerd, gaoler (and bareloop and headerloop, the benchmarks' references, and
// natsnode, the fleet tests' JetStream node) once per test process and returns the directory holding
// them.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gaoler-e2e-bin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + "/"}
		if os.Getenv("GAOLER_RACE") != "" {
			// The daemons the tests start report data races; with GORACE=halt_on_error=1 they
			// stop at the first one, and the test fails.
			args = append(args, "-race")
		}
		if tags := os.Getenv("GAOLER_BUILD_TAGS"); tags != "" {
			args = append(args, "-tags", tags) // gaolerprof: cmd/gaolerd/heapprof.go
		}
		cmd := exec.Command("go", append(args, "github.com/gaoler/gaoler/cmd/gaolerd",
			"github.com/gaoler/gaoler/cmd/gaoler", "github.com/gaoler/gaoler/internal/bareloop/cmd/bareloop",
			"github.com/gaoler/gaoler/internal/bareloop/cmd/headerloop", "github.com/gaoler/gaoler/internal/natsnode")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// testConfig writes a config into a fresh directory and returns its path. body is appended to a
// [daemon] table that points the state directory into the test's temp dir.
func testConfig(t testing.TB, body string) (path, stateDir string) {
	t.Helper()
	dir := t.TempDir()
	stateDir = filepath.Join(dir, "state")
	path = filepath.Join(dir, "gaoler.toml")
	cfg := fmt.Sprintf("[daemon]\nstate_directory = %q\n\n%s\n", stateDir, body)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, stateDir
}

// daemonProc is a gaolerd started by a test.
type daemonProc struct {
	cfg  string // the config file it was started with
	cmd  *exec.Cmd
	log  *strings.Builder
	done chan error
}

// startDaemon starts gaolerd with cfg inside the namespace ns (or, with ns "", as it is: for
// firewall = "none"); env adds environment variables. The process is killed at the end of the test if
// it is still running.
func startDaemon(t testing.TB, ns, cfg string, env ...string) *daemonProc {
	t.Helper()
	bin := filepath.Join(binaries(t), "gaolerd")
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "--config", cfg)
	if ns == "" { // firewall = "none": no namespace needed
		cmd = exec.Command(bin, "--config", cfg)
	}
	cmd.Env = append(os.Environ(), env...)
	p := &daemonProc{cfg: cfg, cmd: cmd, log: &strings.Builder{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = &lockedWriter{b: p.log}, &lockedWriter{b: p.log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("gaolerd output:\n%s", p.output())
		}
	})
	return p
}

// waitReady waits until gaolerd has built its table in namespace ns (it does before READY=1).
func (p *daemonProc) waitReady(t testing.TB, ns string) {
	t.Helper()
	if !waitFor(15*time.Second, func() bool {
		_, err := testenv.NSRun(ns, "nft", "list", "table", "inet", "gaoler")
		return err == nil
	}) {
		t.Fatalf("gaolerd did not start (no table in %s):\n%s", ns, p.output())
	}
}

func (p *daemonProc) output() string {
	lockedMu.Lock()
	defer lockedMu.Unlock()
	return p.log.String()
}

// stop sends sig and waits (bounded) for the process to exit, returning its exit error.
func (p *daemonProc) stop(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		p.done <- err // for Cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("gaolerd did not exit within 15s of %v", sig)
		return nil
	}
}

var lockedMu sync.Mutex

type lockedWriter struct{ b *strings.Builder }

func (w *lockedWriter) Write(p []byte) (int, error) {
	lockedMu.Lock()
	defer lockedMu.Unlock()
	return w.b.Write(p)
}

// element is one element of an nftables set as `nft -j` shows it.
type element struct {
	Prefix  netip.Prefix
	Timeout time.Duration
	Expires time.Duration
}

// setElements lists the elements of set in table inet gaoler inside namespace ns.
func setElements(t testing.TB, ns, set string) []element {
	t.Helper()
	out, err := testenv.NSRun(ns, "nft", "-j", "list", "set", "inet", "gaoler", set)
	if err != nil {
		return nil
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v: %s", err, out)
	}
	var els []element
	for _, obj := range doc.Nftables {
		raw, ok := obj["set"]
		if !ok {
			continue
		}
		var s struct {
			Elem []json.RawMessage `json:"elem"`
		}
		json.Unmarshal(raw, &s)
		for _, e := range s.Elem {
			els = append(els, parseElement(t, e))
		}
	}
	return els
}

func parseElement(t testing.TB, raw json.RawMessage) element {
	// An element is a bare address, {"prefix":{"addr":..,"len":..}}, {"range":[a,b]}, or
	// {"elem":{"val":<one of those>,"timeout":N,"expires":N}}.
	var wrapped struct {
		Elem *struct {
			Val     json.RawMessage `json:"val"`
			Timeout int64           `json:"timeout"`
			Expires int64           `json:"expires"`
		} `json:"elem"`
	}
	var el element
	if json.Unmarshal(raw, &wrapped) == nil && wrapped.Elem != nil {
		el.Timeout = time.Duration(wrapped.Elem.Timeout) * time.Second
		el.Expires = time.Duration(wrapped.Elem.Expires) * time.Second
		raw = wrapped.Elem.Val
	}
	var addr string
	if json.Unmarshal(raw, &addr) == nil {
		a := netip.MustParseAddr(addr)
		el.Prefix = netip.PrefixFrom(a, a.BitLen())
		return el
	}
	var pfx struct {
		Prefix struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	if err := json.Unmarshal(raw, &pfx); err != nil {
		t.Fatalf("nft element %s: %v", raw, err)
	}
	if pfx.Prefix.Addr != "" {
		el.Prefix = netip.PrefixFrom(netip.MustParseAddr(pfx.Prefix.Addr), pfx.Prefix.Len)
		return el
	}
	if len(pfx.Range) == 2 {
		a := netip.MustParseAddr(pfx.Range[0])
		if pfx.Range[0] == pfx.Range[1] {
			el.Prefix = netip.PrefixFrom(a, a.BitLen())
		} else {
			t.Fatalf("nft element range %v is not a prefix", pfx.Range)
		}
	}
	return el
}

// banned reports whether addr is in the set's elements (as a single address or inside a prefix).
func banned(els []element, addr netip.Addr) bool {
	for _, e := range els {
		if e.Prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sshdFailure is an entry as sshd writes it for a failed password.
func sshdFailure(addr netip.Addr, user string, port int) map[string]string {
	return map[string]string{
		"MESSAGE":           fmt.Sprintf("Failed password for %s from %s port %d ssh2", user, addr, port),
		"SYSLOG_IDENTIFIER": "sshd",
		"PRIORITY":          "6",
		"SYSLOG_FACILITY":   "10",
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// runningDaemon starts gaolerd with the config body in a fresh namespace and waits for its table.
func runningDaemon(t testing.TB, body string) (ns string, d *daemonProc) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Journald(t)
	testenv.RequireCommand(t, "nft")
	ns, _ = testenv.NetNS(t)
	cfg, _ := testConfig(t, body)
	d = startDaemon(t, ns, cfg)
	d.waitReady(t, ns)
	return ns, d
}
