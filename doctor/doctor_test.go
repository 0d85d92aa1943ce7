package doctor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/config"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// fakeHost is a Host whose answers the test sets.
type fakeHost struct {
	daemon    Daemon
	daemonErr error
	rs        *Ruleset
	rsErr     error
	ports     []uint16
	portsErr  error
	matched   int
	loose     int
	journErr  error
	since     time.Time
}

func (h *fakeHost) Daemon() (Daemon, error)                 { return h.daemon, h.daemonErr }
func (h *fakeHost) Ruleset() (*Ruleset, error)              { return h.rs, h.rsErr }
func (h *fakeHost) Listeners(comm string) ([]uint16, error) { return h.ports, h.portsErr }
func (h *fakeHost) JournalEntries(match []string, ident string, since time.Time, max int) (int, int, error) {
	h.since = since
	return h.matched, h.loose, h.journErr
}

// healthyRuleset is gaolerd's table for one sshd jail on the input hook, with nftables' own
// (Debian's default) filter table beside it.
func healthyRuleset() *Ruleset {
	return &Ruleset{
		Tables: []Table{{"inet", "filter"}, {"inet", "gaoler"}},
		Chains: []Chain{
			{Family: "inet", Table: "filter", Name: "input", Type: "filter", Hook: "input", Policy: "accept", Prio: 0},
			{Family: "inet", Table: "gaoler", Name: "input", Type: "filter", Hook: "input", Policy: "accept", Prio: 0},
		},
		Sets: []Set{{"inet", "gaoler", "sshd_v4"}, {"inet", "gaoler", "sshd_v6"}, {"inet", "gaoler", "sshd_v4_net"}, {"inet", "gaoler", "sshd_v6_net"}},
		Rules: []Rule{
			{Family: "inet", Table: "gaoler", Chain: "input", Comment: "gaoler jail sshd ipv4", Packets: 12, Bytes: 720},
			{Family: "inet", Table: "gaoler", Chain: "input", Comment: "gaoler jail sshd ipv6", Packets: 3, Bytes: 240},
		},
	}
}

func healthyHost() *fakeHost {
	return &fakeHost{
		daemon: Daemon{Version: "1.0", Jails: []string{"sshd"}},
		rs:     healthyRuleset(), ports: []uint16{22}, matched: 40,
	}
}

func testConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("gaoler.toml", "[jail.sshd]\nenabled = true\nports = [\"ssh\"]\n"+extra)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// find returns the finding of check, failing the test when there is none.
func find(t *testing.T, fs []Finding, check string) Finding {
	t.Helper()
	for _, f := range fs {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("no finding %q in %+v", check, fs)
	return Finding{}
}

func TestHealthyHost(t *testing.T) {
	h := healthyHost()
	fs := Run(testConfig(t, ""), h, now)
	if !Healthy(fs) {
		t.Fatalf("a healthy host has problems: %+v", fs)
	}
	fw := find(t, fs, "jail sshd: firewall")
	if !strings.Contains(fw.Message, "blocked 15 packets (960 bytes)") {
		t.Errorf("firewall finding: %q, want the rules' summed counters", fw.Message)
	}
	other := find(t, fs, "other chains on input")
	if other.Status != Info || !strings.Contains(other.Message, "inet filter/input") || !strings.Contains(other.Message, "final") {
		t.Errorf("other chains: %+v", other)
	}
	if !h.since.Equal(now.Add(-24 * time.Hour)) {
		t.Errorf("journal read since %v, want a day back", h.since)
	}
}

func TestBrokenHosts(t *testing.T) {
	tests := []struct {
		name   string
		extra  string
		break_ func(h *fakeHost)
		check  string
		status Status
		says   string
	}{
		{"daemon down", "", func(h *fakeHost) { h.daemonErr = errors.New("gaolerd is not running") },
			"daemon", Fail, "cannot be reached"},
		{"table deleted", "", func(h *fakeHost) { h.rs = &Ruleset{Tables: []Table{{"inet", "filter"}}} },
			"table", Fail, "table inet gaoler is not in the kernel"},
		{"chain unhooked", "", func(h *fakeHost) { h.rs.Chains[1].Hook = "" },
			"chain input", Fail, "not a filter chain on the input hook"},
		{"chain missing", "", func(h *fakeHost) { h.rs.Chains = h.rs.Chains[:1] },
			"chain input", Fail, "missing"},
		{"set missing", "", func(h *fakeHost) { h.rs.Sets = h.rs.Sets[:3] },
			"jail sshd: firewall", Fail, "set sshd_v6_net"},
		{"rule missing", "", func(h *fakeHost) { h.rs.Rules = nil },
			"jail sshd: firewall", Fail, "its rule in chain input"},
		{"no nft", "", func(h *fakeHost) { h.rsErr = errors.New(`exec: "nft": executable file not found in $PATH`) },
			"nftables", Fail, "cannot read the ruleset"},
		{"sshd on another port", "", func(h *fakeHost) { h.ports = []uint16{22, 2222} },
			"jail sshd: ports", Fail, "sshd listens on port 2222, which jail sshd does not cover"},
		{"ports unreadable", "", func(h *fakeHost) { h.ports, h.portsErr = nil, errors.New("permission denied") },
			"jail sshd: ports", Warn, "cannot tell"},
		{"no entries", "", func(h *fakeHost) { h.matched = 0 },
			"jail sshd: journal", Warn, "no journal entry of the last day satisfies jail sshd's match"},
		{"entries the match misses", "", func(h *fakeHost) { h.matched, h.loose = 0, 7 },
			"jail sshd: journal", Fail, "say they are sshd's: 7, but none satisfies"},
		{"docker without forward", "", func(h *fakeHost) {
			h.rs.Tables = append(h.rs.Tables, Table{"ip", "filter"})
			h.rs.Chains = append(h.rs.Chains, Chain{Family: "ip", Table: "filter", Name: "DOCKER", Type: "", Hook: ""})
		}, "containers", Warn, "Docker is present"},
		{"podman without forward", "", func(h *fakeHost) { h.rs.Tables = append(h.rs.Tables, Table{"inet", "netavark"}) },
			"containers", Warn, "Podman is present"},
		{"firewall none", "[daemon]\nfirewall = \"none\"\n", func(h *fakeHost) {},
			"firewall", Warn, "nothing is blocked"},
		{"jail not running", "[jail.web]\nenabled = true\nfilter = \"sshd\"\n", func(h *fakeHost) {
			h.rs.Sets = append(h.rs.Sets, Set{"inet", "gaoler", "web_v4"}, Set{"inet", "gaoler", "web_v6"}, Set{"inet", "gaoler", "web_v4_net"}, Set{"inet", "gaoler", "web_v6_net"})
			h.rs.Rules = append(h.rs.Rules, Rule{Family: "inet", Table: "gaoler", Chain: "input", Comment: "gaoler jail web ipv4"})
		}, "jail web", Warn, "not in the running daemon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := healthyHost()
			tt.break_(h)
			fs := Run(testConfig(t, tt.extra), h, now)
			if Healthy(fs) {
				t.Fatalf("healthy, want a problem: %+v", fs)
			}
			f := find(t, fs, tt.check)
			if f.Status != tt.status || !strings.Contains(f.Message, tt.says) {
				t.Fatalf("%s: %s %q, want %s containing %q", tt.check, f.Status, f.Message, tt.status, tt.says)
			}
			if f.Status >= Warn && f.Hint == "" {
				t.Errorf("%s: no hint", tt.check)
			}
		})
	}
}

func TestForwardHookCoversContainers(t *testing.T) {
	h := healthyHost()
	h.rs.Chains = append(h.rs.Chains,
		Chain{Family: "ip", Table: "filter", Name: "DOCKER"},
		Chain{Family: "inet", Table: "gaoler", Name: "forward", Type: "filter", Hook: "forward", Prio: 0})
	h.rs.Rules = append(h.rs.Rules, Rule{Family: "inet", Table: "gaoler", Chain: "forward", Comment: "gaoler jail sshd ipv4"})
	fs := Run(testConfig(t, "hooks = [\"input\", \"forward\"]\n"), h, now)
	if !Healthy(fs) {
		t.Fatalf("a jail on the forward hook covers containers; got %+v", fs)
	}
}

func TestParseRuleset(t *testing.T) {
	// The shape of `nft -j -t list ruleset` (libnftables-json(5)), as nft 1.0.6 prints it.
	data := `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
 {"table": {"family": "inet", "name": "gaoler", "handle": 3}},
 {"chain": {"family": "inet", "table": "gaoler", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
 {"chain": {"family": "ip", "table": "nat", "name": "DOCKER", "handle": 4}},
 {"chain": {"family": "ip", "table": "old", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": "filter", "policy": "drop"}},
 {"set": {"family": "inet", "name": "sshd_v4", "table": "gaoler", "type": "ipv4_addr", "handle": 2, "flags": ["interval", "timeout"]}},
 {"rule": {"family": "inet", "table": "gaoler", "chain": "input", "handle": 5, "comment": "gaoler jail sshd ipv4",
   "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@sshd_v4"}},
            {"counter": {"packets": 7, "bytes": 420}}, {"reject": {"type": "tcp reset"}}]}}]}`
	rs, err := ParseRuleset([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if !rs.HasTable("inet", "gaoler") || !rs.HasSet("inet", "gaoler", "sshd_v4") {
		t.Fatalf("parsed %+v", rs)
	}
	c := rs.Chain("inet", "gaoler", "input")
	if c == nil || c.Hook != "input" || c.Type != "filter" {
		t.Fatalf("chain %+v", c)
	}
	if old := rs.Chain("ip", "old", "in"); old == nil || old.Prio != 0 || old.Policy != "drop" {
		t.Fatalf("named priority: %+v", old)
	}
	rules := rs.JailRules("inet", "gaoler", "input", "sshd")
	if len(rules) != 1 || rules[0].Packets != 7 || rules[0].Bytes != 420 {
		t.Fatalf("rules %+v", rules)
	}
	if containerRuntime(rs) != "Docker" {
		t.Fatal("the DOCKER chain was not seen")
	}
	if _, err := ParseRuleset([]byte(`{"nftables": [`)); err == nil {
		t.Fatal("truncated JSON parsed")
	}
}
