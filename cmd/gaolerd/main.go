// Command gaolerd is gaoler's daemon: it follows the systemd journal, counts failures per jail and bans
// offenders in nftables sets whose elements the kernel expires. See gaolerd(8).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/daemon"
	"github.com/gaoler/gaoler/firewall"
	"github.com/gaoler/gaoler/fleet"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gaolerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", config.DefaultPath, "configuration `file` (drop-ins are read from jail.d/ beside it)")
	check := fs.Bool("check", false, "validate the configuration and its drop-ins, then exit 0 (valid) or 2")
	showVersion := fs.Bool("version", false, "print the version and exit")
	flush := fs.Bool("flush-firewall", false, "delete gaoler's nftables table (every ban) and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gaolerd [--config PATH] [--check] [--version] [--flush-firewall]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gaolerd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch {
	case *showVersion:
		fmt.Fprintf(stdout, "gaolerd %s\n", version)
		return 0
	case *check:
		return checkConfig(*configPath, stdout, stderr)
	case *flush:
		return flushFirewall(*configPath, stderr)
	}

	defer startProfile(stderr)()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var fl atomic.Pointer[fleet.Fleet]
	err := daemon.Run(ctx, daemon.Options{ConfigPath: *configPath, Version: version, Reload: hup,
		Plugins: []daemon.Plugin{actionsPlugin, fleetPlugin(&fl), logindPlugin}, FleetStatus: fleetStatus(&fl)})
	var cerr *daemon.ConfigError
	switch {
	case errors.As(err, &cerr):
		printErrors(stderr, cerr.Err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "gaolerd: %v\n", err)
		return 1
	}
	return 0
}

func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		printErrors(stderr, err)
		return 2
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "gaolerd: warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: OK, %s\n", path, cfg.Summary())
	return 0
}

func flushFirewall(path string, stderr io.Writer) int {
	table := "gaoler"
	if cfg, err := config.Load(path); err == nil {
		table = cfg.Daemon.Table
	}
	fw, err := firewall.NewNFTables(table)
	if err == nil {
		err = fw.DeleteTable()
	}
	if err != nil {
		fmt.Fprintf(stderr, "gaolerd: flushing the firewall: %v\n", err)
		return 1
	}
	return 0
}

// printErrors prints each of a joined error's parts as one line.
func printErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "gaolerd: %s\n", line)
	}
}
