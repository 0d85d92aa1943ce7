package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/doctor"
	"github.com/gaoler/gaoler/internal/testenv"
)

// doctorHost is a doctor.Host with gaolerd's table for the sshd jail, sshd on the given ports and
// entries in the journal.
type doctorHost struct {
	ports   []uint16
	noTable bool
}

func (h doctorHost) Daemon() (doctor.Daemon, error) {
	return doctor.Daemon{Version: "0.1.0", Jails: []string{"sshd"}}, nil
}
func (h doctorHost) Ruleset() (*doctor.Ruleset, error) {
	if h.noTable {
		return &doctor.Ruleset{}, nil
	}
	return &doctor.Ruleset{
		Tables: []doctor.Table{{Family: "inet", Name: "gaoler"}},
		Chains: []doctor.Chain{{Family: "inet", Table: "gaoler", Name: "input", Type: "filter", Hook: "input", Policy: "accept"}},
		Sets: []doctor.Set{{Family: "inet", Table: "gaoler", Name: "sshd_v4"}, {Family: "inet", Table: "gaoler", Name: "sshd_v6"},
			{Family: "inet", Table: "gaoler", Name: "sshd_v4_net"}, {Family: "inet", Table: "gaoler", Name: "sshd_v6_net"}},
		Rules: []doctor.Rule{{Family: "inet", Table: "gaoler", Chain: "input", Comment: "gaoler jail sshd ipv4", Packets: 4, Bytes: 240},
			{Family: "inet", Table: "gaoler", Chain: "input", Comment: "gaoler jail sshd ipv6"}},
	}, nil
}
func (h doctorHost) Listeners(string) ([]uint16, error) { return h.ports, nil }
func (h doctorHost) JournalEntries([]string, string, time.Time, int) (int, int, error) {
	return 12, 0, nil
}

func TestDoctor(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "gaoler.toml")
	os.WriteFile(cfgPath, []byte("[jail.sshd]\nenabled = true\nports = [\"ssh\"]\n"), 0o644)
	tests := []struct {
		name string
		args string
		host doctorHost
	}{
		{"doctor-healthy", "doctor", doctorHost{ports: []uint16{22}}},
		{"doctor-broken", "doctor", doctorHost{ports: []uint16{22, 2222}, noTable: true}},
		{"doctor-broken-json", "doctor --json", doctorHost{ports: []uint16{2222}}},
		{"doctor-extra", "doctor sshd", doctorHost{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			e := &env{
				stdout: &stdout, stderr: &stderr,
				dial: func() (api, error) { return nil, errors.New("no bus in this test") },
				now:  func() time.Time { return now },
				loc:  time.UTC,
				host: func(*config.Config) doctor.Host { return tt.host },
			}
			args := append(strings.Fields(tt.args), "--config", cfgPath)
			code := e.run(args)
			out := strings.ReplaceAll(stdout.String(), cfgPath, "CONFIG")
			testenv.Golden(t, tt.name+".golden", transcript(tt.args, code, out, stderr.String()))
		})
	}
}
