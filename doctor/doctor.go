package doctor

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gaoler/gaoler/config"
)

// Status is a finding's verdict.
type Status int

const (
	OK   Status = iota // as it should be
	Info               // worth knowing, nothing to fix
	Warn               // bans may not work as the admin expects
	Fail               // bans do not work
)

var statusNames = [...]string{OK: "ok", Info: "info", Warn: "warn", Fail: "fail"}

func (s Status) String() string { return statusNames[s] }

// MarshalText writes the status's name, for --json.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is the outcome of one check.
type Finding struct {
	Check   string `json:"check"`          // what was checked: "daemon", "table", "chain input", "jail sshd: ports", ...
	Status  Status `json:"status"`         // the verdict
	Message string `json:"message"`        // what was found, in a sentence
	Hint    string `json:"hint,omitempty"` // what to do about it
}

// Healthy reports whether no finding is a warning or a failure.
func Healthy(fs []Finding) bool {
	for _, f := range fs {
		if f.Status >= Warn {
			return false
		}
	}
	return true
}

// Host is what the checks read of the host.
type Host interface {
	// Daemon returns what the running gaolerd says of itself, or an error when it cannot be reached.
	Daemon() (Daemon, error)
	// Ruleset returns the kernel's nftables ruleset, without set elements.
	Ruleset() (*Ruleset, error)
	// Listeners returns the TCP ports sshd processes of this host's network namespace listen on.
	Listeners(comm string) ([]uint16, error)
	// JournalEntries counts the journal entries since since that satisfy match (journalctl terms),
	// up to max; loose counts those whose SYSLOG_IDENTIFIER is ident, whoever sent them, to tell "sshd
	// logs nothing" from "sshd logs, but not where the match looks".
	JournalEntries(match []string, ident string, since time.Time, max int) (matched, loose int, err error)
}

// Daemon is what the doctor asks the running daemon.
type Daemon struct {
	Version string
	Jails   []string
}

// journalWindow is how far back the journal check looks for entries of each jail's service.
const journalWindow = 24 * time.Hour

// Run checks the host against cfg and returns the findings, in the order of the checks.
func Run(cfg *config.Config, h Host, now time.Time) []Finding {
	var fs []Finding
	add := func(check string, st Status, hint, format string, args ...any) {
		fs = append(fs, Finding{Check: check, Status: st, Message: fmt.Sprintf(format, args...), Hint: hint})
	}
	jails := cfg.Enabled()
	if len(jails) == 0 {
		add("config", Warn, "enable a jail ([jail.sshd] enabled = true)", "no jail is enabled: nothing is protected")
	}

	if d, err := h.Daemon(); err != nil {
		add("daemon", Fail, "systemctl status gaolerd; journalctl -u gaolerd", "gaolerd cannot be reached over the system bus: %v", err)
	} else {
		add("daemon", OK, "", "gaolerd %s runs; its jails: %s", d.Version, strings.Join(d.Jails, ", "))
		for _, j := range jails {
			if !slices.Contains(d.Jails, j.Name) {
				add("jail "+j.Name, Warn, "gaoler reload", "jail %s is enabled in the configuration but not in the running daemon", j.Name)
			}
		}
	}

	if cfg.Daemon.Firewall == "none" {
		add("firewall", Warn, `set [daemon] firewall = "nftables"`, `firewall = "none": failures are counted and logged, nothing is blocked`)
	} else {
		fs = append(fs, checkRuleset(cfg, jails, h)...)
	}
	fs = append(fs, checkPorts(jails, h)...)
	fs = append(fs, checkJournal(jails, h, now)...)
	return fs
}

// checkRuleset checks the table, its chains, the jails' sets and rules, their counters, the other base
// chains of the same hooks, and whether containers publish ports that only the forward hook sees.
func checkRuleset(cfg *config.Config, jails []*config.Jail, h Host) []Finding {
	var fs []Finding
	add := func(check string, st Status, hint, format string, args ...any) {
		fs = append(fs, Finding{Check: check, Status: st, Message: fmt.Sprintf(format, args...), Hint: hint})
	}
	rs, err := h.Ruleset()
	if err != nil {
		add("nftables", Fail, "install nftables (apt install nftables) and run gaoler doctor as root", "cannot read the ruleset: %v", err)
		return fs
	}
	table := cfg.Daemon.Table
	if !rs.HasTable("inet", table) {
		add("table", Fail, "systemctl restart gaolerd (it builds the table at start and restores it within seconds when it is removed)",
			"table inet %s is not in the kernel: no ban is enforced", table)
		return fs
	}
	add("table", OK, "", "table inet %s is in the kernel", table)

	var hooks []string
	for _, j := range jails {
		for _, hk := range j.Hooks {
			if !slices.Contains(hooks, hk) {
				hooks = append(hooks, hk)
			}
		}
	}
	slices.Sort(hooks)
	for _, hk := range hooks {
		c := rs.Chain("inet", table, hk)
		switch {
		case c == nil:
			add("chain "+hk, Fail, "systemctl restart gaolerd", "chain %s of table inet %s is missing: the jails that use it block nothing", hk, table)
		case c.Hook != hk || c.Type != "filter":
			add("chain "+hk, Fail, "systemctl restart gaolerd", "chain %s of table inet %s is not a filter chain on the %s hook (type %q, hook %q): packets never reach it", hk, table, hk, c.Type, c.Hook)
		default:
			add("chain "+hk, OK, "", "chain %s is hooked on %s (priority %d)", hk, hk, c.Prio)
		}
		fs = append(fs, otherChains(rs, table, hk)...)
	}

	for _, j := range jails {
		check := "jail " + j.Name + ": firewall"
		var missing []string
		for _, s := range []string{j.Name + "_v4", j.Name + "_v6", j.Name + "_v4_net", j.Name + "_v6_net"} {
			if !rs.HasSet("inet", table, s) {
				missing = append(missing, "set "+s)
			}
		}
		var packets, bytes uint64
		for _, hk := range j.Hooks {
			rules := rs.JailRules("inet", table, hk, j.Name)
			if len(rules) == 0 {
				missing = append(missing, "its rule in chain "+hk)
			}
			for _, r := range rules {
				packets += r.Packets
				bytes += r.Bytes
			}
		}
		if len(missing) > 0 {
			add(check, Fail, "systemctl restart gaolerd", "jail %s lacks %s: its bans are not enforced", j.Name, strings.Join(missing, ", "))
			continue
		}
		add(check, OK, "", "jail %s: sets and rules in place; its rules have blocked %d packets (%d bytes) since they were loaded", j.Name, packets, bytes)
	}

	if hasForward(jails) {
		return fs
	}
	if what := containerRuntime(rs); what != "" {
		add("containers", Warn, `add hooks = ["input", "forward"] to the jails that protect published ports`,
			"%s is present: ports it publishes are reached through the forward hook, which no jail uses, so their traffic never meets a ban", what)
	}
	return fs
}

// otherChains explains the other tables' base chains on hook: they cannot undo a ban.
func otherChains(rs *Ruleset, table, hook string) []Finding {
	var names []string
	for _, c := range rs.Chains {
		if c.Hook == hook && !(c.Family == "inet" && c.Table == table) {
			names = append(names, fmt.Sprintf("%s %s/%s (priority %d, policy %s)", c.Family, c.Table, c.Name, c.Prio, c.Policy))
		}
	}
	if len(names) == 0 {
		return nil
	}
	return []Finding{{
		Check:  "other chains on " + hook,
		Status: Info,
		Message: fmt.Sprintf("other base chains see the same packets: %s. They cannot let a banned address through: "+
			"in nftables an accept ends only the chain it is in, the packet still traverses every other base chain "+
			"of the hook, and a drop or reject in any of them is final", strings.Join(names, "; ")),
	}}
}

func hasForward(jails []*config.Jail) bool {
	for _, j := range jails {
		if slices.Contains(j.Hooks, "forward") {
			return true
		}
	}
	return false
}

// containerRuntime names a container runtime whose port publishing the ruleset shows: Docker's DOCKER
// chains (iptables-nft) or a Podman/netavark table.
func containerRuntime(rs *Ruleset) string {
	for _, c := range rs.Chains {
		if c.Name == "DOCKER" || c.Name == "DOCKER-USER" {
			return "Docker"
		}
	}
	for _, t := range rs.Tables {
		if t.Name == "netavark" || strings.HasPrefix(t.Name, "podman") {
			return "Podman"
		}
	}
	return ""
}

// checkPorts compares the ports the sshd jails cover with those sshd listens on.
func checkPorts(jails []*config.Jail, h Host) []Finding {
	var fs []Finding
	for _, j := range jails {
		if j.FilterName != "sshd" || j.Protocol == "udp" {
			continue
		}
		check := "jail " + j.Name + ": ports"
		if len(j.PortNumbers) == 0 {
			fs = append(fs, Finding{Check: check, Status: OK, Message: fmt.Sprintf("jail %s covers every port", j.Name)})
			continue
		}
		ports, err := h.Listeners("sshd")
		if err != nil {
			fs = append(fs, Finding{Check: check, Status: Warn, Hint: "run gaoler doctor as root",
				Message: fmt.Sprintf("cannot tell which ports sshd listens on: %v", err)})
			continue
		}
		if len(ports) == 0 {
			fs = append(fs, Finding{Check: check, Status: Info, Message: "no sshd process listens in this host's network namespace"})
			continue
		}
		var uncovered []string
		for _, p := range ports {
			covered := false
			for _, r := range j.PortNumbers {
				if p >= r.From && p <= r.To {
					covered = true
				}
			}
			if !covered {
				uncovered = append(uncovered, fmt.Sprint(p))
			}
		}
		if len(uncovered) > 0 {
			fs = append(fs, Finding{Check: check, Status: Fail,
				Hint: fmt.Sprintf(`set ports = [%s] in [jail.%s]`, quoteList(ports), j.Name),
				Message: fmt.Sprintf("sshd listens on port %s, which jail %s does not cover (it covers %s): attackers banned there can still reach sshd",
					strings.Join(uncovered, ", "), j.Name, strings.Join(j.Ports, ", "))})
			continue
		}
		fs = append(fs, Finding{Check: check, Status: OK, Message: fmt.Sprintf("jail %s covers every port sshd listens on (%s)", j.Name, quoteList(ports))})
	}
	return fs
}

func quoteList(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

// checkJournal looks for recent entries that each jail's match reads.
func checkJournal(jails []*config.Jail, h Host, now time.Time) []Finding {
	var fs []Finding
	for _, j := range jails {
		check := "jail " + j.Name + ": journal"
		ident := ""
		if j.FilterName == "sshd" {
			ident = "sshd"
		}
		n, loose, err := h.JournalEntries(j.JournalMatch, ident, now.Add(-journalWindow), 1000)
		switch {
		case err != nil:
			fs = append(fs, Finding{Check: check, Status: Warn, Hint: "run gaoler doctor as root (or in group systemd-journal)",
				Message: fmt.Sprintf("cannot read the journal: %v", err)})
		case n > 0:
			more := ""
			if n >= 1000 {
				more = " or more"
			}
			fs = append(fs, Finding{Check: check, Status: OK,
				Message: fmt.Sprintf("journal entries of the last %s that jail %s reads: %d%s", humanHours(journalWindow), j.Name, n, more)})
		case loose > 0:
			fs = append(fs, Finding{Check: check, Status: Fail,
				Hint: "check the unit's name (journalctl -o verbose SYSLOG_IDENTIFIER=sshd shows _SYSTEMD_UNIT, _COMM, _UID) and set journal_match",
				Message: fmt.Sprintf("entries of the last %s that say they are sshd's: %d, but none satisfies jail %s's match (%s): a renamed unit or a changed SyslogFacility? Its failures are not counted",
					humanHours(journalWindow), loose, j.Name, strings.Join(j.JournalMatch, " "))})
		default:
			fs = append(fs, Finding{Check: check, Status: Warn,
				Hint: "journalctl " + strings.Join(j.JournalMatch, " ") + " shows what the match reads",
				Message: fmt.Sprintf("no journal entry of the last %s satisfies jail %s's match (%s): is the service running and logging to the journal?",
					humanHours(journalWindow), j.Name, strings.Join(j.JournalMatch, " "))})
		}
	}
	return fs
}

func humanHours(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if d == 24*time.Hour {
			return "day"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
