// Command gaoler is the client of gaolerd: it shows jails and bans and changes them over the system bus
// (io.github.gaoler.Gaoler1), and reads the daemon's events from the journal. See gaoler(1).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/doctor"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

// Exit codes, as SPEC.md fixes them.
const (
	exitOK      = 0
	exitRuntime = 1 // the daemon is unreachable, or the bus or the daemon failed
	exitUsage   = 2 // bad command line, or a configuration the daemon refused to reload
)

// api is what the commands need of the bus API; *bus.Client implements it, tests use a fake.
type api interface {
	Version() (string, error)
	Reader() (string, error)
	Jails() ([]string, error)
	Jail(name string) (bus.JailInfo, error)
	Ban(jail, address string, seconds uint64) (bus.BanInfo, error)
	Unban(jail, address string) (bus.BanInfo, error)
	UnbanAll(jail string) (uint32, error)
	ListBans(jail string) ([]bus.BanInfo, error)
	Reload() error
	Metrics() (string, error)
	Close() error
}

// env is everything a command touches outside itself, so tests can replace it.
type env struct {
	stdout, stderr io.Writer
	dial           func() (api, error)
	events         func(jail string, n int) ([]string, error) // the last n gaoler events from the journal
	now            func() time.Time
	loc            *time.Location
	color          bool // stdout is a terminal and NO_COLOR is unset
	// host, when set, replaces the host gaoler doctor checks (tests).
	host func(cfg *config.Config) doctor.Host
}

func main() {
	e := &env{
		stdout: os.Stdout,
		stderr: os.Stderr,
		dial:   func() (api, error) { return bus.Dial() },
		events: recentEvents,
		now:    time.Now,
		loc:    time.Local,
		color:  isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "",
	}
	os.Exit(e.run(os.Args[1:]))
}

const usage = `Usage: gaoler COMMAND [ARGUMENTS]

Commands that ask the daemon (over the system bus):
  status [JAIL] [--json]              overview, or one jail's counters, matches and bans
  banned [JAIL] [--json]              active bans
  ban JAIL ADDRESS [--for DURATION]   ban an address or prefix (default: the jail's bantime)
  unban JAIL ADDRESS                  lift a ban and forgive the failures so far
  unban --all [JAIL]                  lift every ban of JAIL, or of every jail
  trust JAIL ADDRESS [--for DURATION] do not ban an address (default: trust_after_login)
  untrust JAIL ADDRESS                end a trust after login; failures count again
  trusted [JAIL] [--json]             addresses trusted after a login
  why ADDRESS [--jail JAIL] [--json]  why an address is banned (the rule, who, the journal
                                      entries) or why not
  watch [JAIL] [--json]               follow bans and unbans as they happen, with who made them
  reload                              make the daemon re-read its configuration
  metrics                             the Prometheus text of the metrics endpoint

Commands that work without the daemon:
  log [-f] [-n N] [--jail JAIL] [--since TIME] [--json]
                                      ban, unban and failure events from the journal
  test-filter FILTER [--mode MODE] [--config PATH] [SOURCE] [--json]
                                      try a filter on log lines or the journal
  check-config [--config PATH]        validate the configuration
  doctor [--config PATH] [--json]     check that bans can work on this host (exit 1: problems)

Options:
  --version                           print the version and exit
  -h, --help                          print this help and exit

DURATION: "90s", "10m", "1h30m", "2d", "1w", "1d12h" or a number of seconds.
`

// run runs the command line args (without the program name) and returns the exit code.
func (e *env) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, usage)
		return exitOK
	case "--version", "version":
		fmt.Fprintf(e.stdout, "gaoler %s\n", version)
		return exitOK
	case "log":
		return runLog(rest, e.stdout, e.stderr)
	case "test-filter":
		return runTestFilter(rest, e.stdout, e.stderr)
	case "check-config":
		return runCheckConfig(rest, e.stdout, e.stderr)
	case "doctor":
		return e.doctor(rest)
	}
	commands := map[string]func(args []string) error{
		"status": e.status,
		"banned": e.banned,
		"ban":    e.ban,
		"unban":  e.unban,
		"reload": e.reload,
		// the trust after login (trust.go)
		"trust":   e.trust,
		"untrust": e.untrust,
		"trusted": e.trusted,
		"why":     e.why, // why.go
		"metrics": e.metrics,
		"watch":   e.watch, // watch.go
	}
	fn, ok := commands[cmd]
	if !ok {
		return e.fail(usageErrorf("unknown command %q (see gaoler --help)", cmd))
	}
	return e.fail(fn(rest))
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// fail prints err as one line and returns its exit code (0 for nil): 2 for a bad command line, a
// configuration the daemon refused, or an address it refused to ban; 1 for the rest.
func (e *env) fail(err error) int {
	if err == nil {
		return exitOK
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	fmt.Fprintf(e.stderr, "gaoler: %s\n", msg)
	var u *usageError
	if errors.As(err, &u) || errors.Is(err, bus.ErrInvalidConfig) || errors.Is(err, bus.ErrInvalidAddress) {
		return exitUsage
	}
	return exitRuntime
}

// connect dials the daemon's bus.
func (e *env) connect() (api, error) {
	d, err := e.dial()
	if err != nil {
		return nil, fmt.Errorf("%w (is the system bus running?)", err)
	}
	return d, nil
}

// explain turns an error of the bus API into the line the user reads, naming the jail and address the
// command was about.
func explain(err error, jail, address string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bus.ErrNotRunning):
		return bus.ErrNotRunning
	case errors.Is(err, bus.ErrAccessDenied):
		return errors.New("permission denied: only root may change bans or reload")
	case errors.Is(err, bus.ErrNoSuchJail):
		return fmt.Errorf("no such jail: %s", jail)
	case errors.Is(err, bus.ErrNotBanned):
		return fmt.Errorf("%s is not banned in jail %s", address, jail)
	case errors.Is(err, bus.ErrInvalidConfig):
		return fmt.Errorf("configuration not reloaded, the daemon keeps the running one: %w", err)
	}
	// The rest, InvalidAddress among them, carry the daemon's message, which says what is wrong and
	// names the address ("0.0.0.0/0 contains 127.0.0.0/8, which jail sshd ignores").
	return err
}
