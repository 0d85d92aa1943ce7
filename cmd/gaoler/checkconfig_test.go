package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gaoler/gaoler/internal/testenv"
)

// runTool runs one of the commands that work without the daemon (args without the command's name)
// and returns its golden transcript.
func runTool(name string, fn func(args []string, stdout, stderr *bytes.Buffer) int, args string) string {
	var stdout, stderr bytes.Buffer
	code := fn(splitArgs(args), &stdout, &stderr)
	return transcript(strings.TrimSpace(name+" "+args), code, stdout.String(), stderr.String())
}

// splitArgs splits a command line at spaces, keeping 'quoted words' together.
func splitArgs(s string) []string {
	var out []string
	for s != "" {
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, "'") {
			end := strings.Index(s[1:], "'") + 1
			out = append(out, s[1:end])
			s = s[end+1:]
			continue
		}
		word, rest, _ := strings.Cut(s, " ")
		if word != "" {
			out = append(out, word)
		}
		s = rest
	}
	return out
}

func checkConfig(args []string, stdout, stderr *bytes.Buffer) int {
	return runCheckConfig(args, stdout, stderr)
}

func TestCheckConfig(t *testing.T) {
	for _, tt := range []struct{ name, args string }{
		{"check-config-ok", "check-config --config testdata/config/ok/gaoler.toml"},
		{"check-config-ok-json", "check-config --config testdata/config/ok/gaoler.toml --json"},
		{"check-config-errors", "check-config --config testdata/config/bad/gaoler.toml"},
		{"check-config-errors-json", "check-config --json --config testdata/config/bad/gaoler.toml"},
		{"check-config-warning", "check-config --config testdata/config/warn/gaoler.toml"},
		{"check-config-missing", "check-config --config testdata/config/none/gaoler.toml"},
		{"check-config-shipped", "check-config --config ../../packaging/gaoler.toml"},
		{"check-config-extra-arg", "check-config extra"},
		{"check-config-bad-flag", "check-config --conf x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testenv.Golden(t, tt.name+".golden", runTool("check-config", checkConfig, strings.TrimPrefix(tt.args, "check-config")))
		})
	}
}
