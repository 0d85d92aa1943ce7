package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	t.Setenv(profileEnv, path)
	var stderr strings.Builder
	stop := startProfile(&stderr)
	for i := 0; i < 1e6; i++ {
		_ = strings.Repeat("x", i%7)
	}
	stop()
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Errorf("profile %s: %v, want a non-empty file", path, err)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}

	t.Setenv(profileEnv, filepath.Join(t.TempDir(), "missing", "cpu.prof"))
	stderr.Reset()
	startProfile(&stderr)()
	if !strings.Contains(stderr.String(), profileEnv) {
		t.Errorf("stderr = %q, want the variable named", stderr.String())
	}

	t.Setenv(profileEnv, "")
	stderr.Reset()
	startProfile(&stderr)()
	if stderr.Len() != 0 {
		t.Errorf("unset: stderr = %q, want nothing", stderr.String())
	}
}
