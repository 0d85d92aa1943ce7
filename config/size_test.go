package config

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "65536": 65536, "160M": 160 << 20, "160MiB": 160 << 20, "1G": 1 << 30, "2GiB": 2 << 30,
		"512K": 512 << 10, "1T": 1 << 40, "100B": 100, " 64 M ": 64 << 20,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1M", "1.5G", "10X", "12 34", "99999999999T", "0x10"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	cfg, errs := load(t, map[string]string{"gaoler.toml": "[jail.sshd]\nenabled = true\n"})
	if errs != nil || cfg.Daemon.MemoryLimit != DefaultMemoryLimit {
		t.Fatalf("default memory_limit: %d %v, want %d", cfg.Daemon.MemoryLimit, errs, DefaultMemoryLimit)
	}
	for in, want := range map[string]int64{`"256M"`: 256 << 20, "0": 0, `"0"`: 0, "67108864": 64 << 20} {
		cfg, errs := load(t, map[string]string{"gaoler.toml": "[daemon]\nmemory_limit = " + in + "\n"})
		if errs != nil || cfg.Daemon.MemoryLimit != want {
			t.Errorf("memory_limit = %s: %d %v, want %d", in, cfg.Daemon.MemoryLimit, errs, want)
		}
	}
	for in, want := range map[string]string{
		`"1M"`: "too little", "-5": "negative", `"lots"`: "bad size", "true": "a size",
	} {
		_, errs := load(t, map[string]string{"gaoler.toml": "[daemon]\nmemory_limit = " + in + "\n"})
		if len(errs) != 1 || !strings.Contains(errs[0], "memory_limit") || !strings.Contains(errs[0], want) {
			t.Errorf("memory_limit = %s: errors %q, want one about %q", in, errs, want)
		}
	}
}
