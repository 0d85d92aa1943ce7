// Package testenv holds the helpers that gaoler's tests use to reach real components: a journald, a
// network namespace, a private D-Bus. Tests that need root or such a component call Require first:
// outside CI they skip, but with GAOLER_INTEGRATION=1 (as CI sets it) a missing prerequisite fails the
// test, so that an integration test can never pass by silently not running.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Integration reports whether integration tests must run (GAOLER_INTEGRATION=1).
func Integration() bool { return os.Getenv("GAOLER_INTEGRATION") == "1" }

// Require skips the test when ok is false, or fails it when integration tests must run.
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if Integration() {
		t.Fatalf("integration prerequisite missing: %s", why)
	}
	t.Skipf("skipping: %s (set GAOLER_INTEGRATION=1 to make this a failure)", why)
}

// RequireRoot requires the test to run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "needs root")
}

// RequireCommand requires an executable on PATH and returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err == nil, "needs the command "+name)
	return p
}
