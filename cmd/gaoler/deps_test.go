package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/gaoler/gaoler/internal/testenv"
)

// TestClientImportsNoDaemon keeps /usr/bin/gaoler small and its imports pointing one way: the client
// changes bans only through the bus and may import events, bus, config and jails (for test-filter),
// never the daemon's wiring, the firewall or the nftables library.
func TestClientImportsNoDaemon(t *testing.T) {
	goCmd := testenv.RequireCommand(t, "go")
	out, err := exec.Command(goCmd, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/gaoler/gaoler/daemon",
		"github.com/gaoler/gaoler/firewall",
		"github.com/google/nftables",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("cmd/gaoler depends on %s", pkg)
			}
		}
	}
}
