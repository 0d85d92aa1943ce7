package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/doctor"
)

// doctorHost returns the host gaoler doctor checks: the real one, asking the daemon through e.dial.
func (e *env) doctorHost(cfg *config.Config) doctor.Host {
	if e.host != nil {
		return e.host(cfg)
	}
	return &doctor.System{
		JournalDirectory: cfg.Journal.Directory,
		DaemonInfo: func() (doctor.Daemon, error) {
			c, err := e.connect()
			if err != nil {
				return doctor.Daemon{}, err
			}
			defer c.Close()
			v, err := c.Version()
			if err != nil {
				return doctor.Daemon{}, explain(err, "", "")
			}
			jails, err := c.Jails()
			if err != nil {
				return doctor.Daemon{}, explain(err, "", "")
			}
			return doctor.Daemon{Version: v, Jails: jails}, nil
		},
	}
}

// doctor is `gaoler doctor [--config PATH] [--json]`: it checks that bans can work on this host and
// exits 0 when all is well, 1 with the list of what is wrong.
func (e *env) doctor(args []string) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	path := fs.String("config", config.DefaultPath, "the configuration file")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	rest, err := parseArgs(fs, args)
	if err == nil {
		err = wantArgs(rest, 0, 0, "doctor [--config PATH] [--json]")
	}
	if err != nil {
		return e.fail(err)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		for _, line := range configErrors(err) {
			fmt.Fprintf(e.stderr, "gaoler: %s\n", line)
		}
		return exitUsage
	}
	findings := doctor.Run(cfg, e.doctorHost(cfg), e.now())
	healthy := doctor.Healthy(findings)
	if *asJSON {
		out, _ := json.MarshalIndent(struct {
			Healthy  bool             `json:"healthy"`
			Findings []doctor.Finding `json:"findings"`
		}{healthy, findings}, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", out)
	} else {
		problems := 0
		for _, f := range findings {
			if f.Status >= doctor.Warn {
				problems++
			}
		}
		if healthy {
			fmt.Fprintln(e.stdout, "All is well: bans can work on this host.")
		} else {
			fmt.Fprintf(e.stdout, "%s found:\n", config.Plural(problems, "problem"))
		}
		for _, f := range findings {
			label := strings.ToUpper(f.Status.String())
			if f.Status == doctor.OK || f.Status == doctor.Info {
				label = f.Status.String()
			}
			fmt.Fprintf(e.stdout, "  %-5s %s: %s\n", label, f.Check, f.Message)
			if f.Hint != "" && f.Status >= doctor.Warn {
				fmt.Fprintf(e.stdout, "        fix: %s\n", f.Hint)
			}
		}
	}
	if !healthy {
		return exitRuntime
	}
	return exitOK
}
