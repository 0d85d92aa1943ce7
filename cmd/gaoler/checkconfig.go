package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gaoler/gaoler/config"
)

// runCheckConfig implements `gaoler check-config [--config PATH] [--json]`: it loads the configuration
// and its drop-ins as gaolerd would and prints every mistake as "file:line:col: key: msg" (exit 2), or
// a one-line summary and the warnings (exit 0).
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("config", config.DefaultPath, "the configuration file")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	rest, err := parseArgs(fs, args)
	if err == nil {
		err = wantArgs(rest, 0, 0, "check-config [--config PATH] [--json]")
	}
	if err != nil {
		fmt.Fprintf(stderr, "gaoler: %s\n", err)
		return exitUsage
	}

	cfg, err := config.Load(*path)
	if *asJSON {
		return checkConfigJSON(cfg, err, stdout)
	}
	if err != nil {
		for _, line := range configErrors(err) {
			fmt.Fprintf(stderr, "gaoler: %s\n", line)
		}
		return exitUsage
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "gaoler: warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "OK: %s\n", cfg.Summary())
	if len(cfg.Enabled()) == 0 {
		fmt.Fprintf(stderr, "gaoler: warning: no jail is enabled: gaolerd would watch nothing\n")
	}
	return exitOK
}

func checkConfigJSON(cfg *config.Config, err error, stdout io.Writer) int {
	type result struct {
		OK       bool     `json:"ok"`
		Enabled  []string `json:"enabled"`
		Files    []string `json:"files"`
		Warnings []string `json:"warnings"`
		Errors   []string `json:"errors"`
	}
	r := result{OK: err == nil, Enabled: []string{}, Files: []string{}, Warnings: []string{}, Errors: []string{}}
	if err != nil {
		r.Errors = configErrors(err)
	} else {
		for _, j := range cfg.Enabled() {
			r.Enabled = append(r.Enabled, j.Name)
		}
		r.Files = append(r.Files, cfg.Files...)
		r.Warnings = append(r.Warnings, cfg.Warnings...)
	}
	writeJSON(stdout, r)
	if err != nil {
		return exitUsage
	}
	return exitOK
}

// configErrors splits the error of config.Load into its one-line mistakes.
func configErrors(err error) []string {
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, configErrors(e)...)
		}
		return out
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return []string{ce.Error()}
	}
	return strings.Split(err.Error(), "\n")
}
