package config

import (
	"errors"
	"math"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gaoler/gaoler/jails"
)

// Built-in defaults, used where no file sets a key. The shipped gaoler.toml writes them out.
const (
	defaultStateDirectory = "/var/lib/gaoler"
	defaultFirewall       = "nftables"
	defaultTable          = "gaoler"
	defaultMode           = "normal"
)

// baseJail returns a jail holding the built-in defaults, before [defaults] and the jail's own table.
func baseJail() Jail {
	return Jail{
		Mode:      defaultMode,
		Protocol:  "tcp",
		BlockType: "reject",
		Ports:     []string{},
		Hooks:     []string{"input"},
		Settings: jails.Settings{
			BanTime:    10 * time.Minute,
			FindTime:   10 * time.Minute,
			MaxRetry:   5,
			IgnoreIP:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
			IgnoreSelf: true,
			IPv6Prefix: 128,
			// The scale settings: how many failure windows a jail keeps, and when a /64 of
			// rotating IPv6 addresses is banned whole.
			IPv6SubnetLimit: jails.DefaultIPv6SubnetLimit,
			Increment: jails.Increment{
				Enabled: false,
				Factor:  2,
				MaxTime: 7 * 24 * time.Hour,
			},
			Trust: defaultTrust(),
		},
	}
}

// The keys of each table. commonKeys may be set in [defaults] and overridden in every jail.
var (
	rootKeys      = []string{"daemon", "journal", "defaults", "jail", "filter", "action", "fleet"}
	daemonKeys    = []string{"state_directory", "firewall", "table", "memory_limit"}
	journalKeys   = []string{"directory", "hot_time"}
	commonKeys    = append([]string{"bantime", "findtime", "maxretry", "ignoreip", "ignoreself", "blocktype", "ipv6_prefix", "increment", "hooks", "ports", "protocol", "max_tracked", "ipv6_subnet_limit"}, append(trustKeys, actionsKeys...)...)
	jailOnlyKeys  = []string{"enabled", "filter", "mode", "journal_match"}
	incrementKeys = []string{"enabled", "factor", "maxtime", "overalljails"}
	filterKeys    = []string{"journal_match", "failregex", "ignoreregex"}
)

// nameRE is what a jail, filter or table name may be: it becomes part of nftables set names
// ("<jail>_v4") and of D-Bus object paths.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// fieldRE is a journal field name as journald accepts it.
var fieldRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,63}$`)

func resolve(files []string, srcs []*source) (*Config, error) {
	c := &checker{m: mergeSources(srcs), seen: make(map[string]bool)}
	cfg := &Config{
		Files:   files,
		Daemon:  Daemon{StateDirectory: defaultStateDirectory, Firewall: defaultFirewall, Table: defaultTable, MemoryLimit: DefaultMemoryLimit},
		Journal: Journal{HotTime: DefaultHotTime},
		Fleet:   defaultFleet(),
	}
	root := c.m.data
	c.known(root, nil, rootKeys...)
	if t, ok := c.sub(root, nil, "daemon"); ok {
		c.daemon(t, &cfg.Daemon)
	}
	if t, ok := c.sub(root, nil, "journal"); ok {
		c.known(t, []string{"journal"}, journalKeys...)
		if v, ok := t["directory"]; ok {
			cfg.Journal.Directory, _ = c.str(v, []string{"journal", "directory"})
		}
		if v, ok := t["hot_time"]; ok {
			if d, ok := c.duration(v, []string{"journal", "hot_time"}); ok {
				cfg.Journal.HotTime = d
			}
		}
	}
	base := baseJail()
	if t, ok := c.sub(root, nil, "defaults"); ok {
		path := []string{"defaults"}
		c.known(t, path, commonKeys...)
		c.common(t, path, &base)
	}
	filters := make(map[string]*userFilter)
	if t, ok := c.sub(root, nil, "filter"); ok {
		for _, name := range sortedKeys(t) {
			path := []string{"filter", name}
			if ft, ok := c.table(t[name], path); ok && c.name(path, name, "filter") {
				if f := c.filter(ft, path, name); f != nil {
					filters[name] = f
				}
			}
		}
	}
	cfg.Actions = c.actions(root)
	if t, ok := c.sub(root, nil, "jail"); ok {
		builtins := make(map[[2]string]*jails.Filter)
		for _, name := range sortedKeys(t) {
			path := []string{"jail", name}
			jt, ok := c.table(t[name], path)
			if !ok || !c.name(path, name, "jail") {
				continue
			}
			if j := c.jail(jt, path, name, base, filters, builtins); j != nil {
				cfg.Jails = append(cfg.Jails, j)
			}
		}
	}
	actionTables, _ := root["action"].(map[string]any)
	c.checkJailActions(cfg.Jails, cfg.Actions, actionTables)
	if t, ok := c.sub(root, nil, "fleet"); ok {
		names := make(map[string]bool, len(cfg.Jails))
		for _, j := range cfg.Jails {
			names[j.Name] = true
		}
		c.fleet(t, &cfg.Fleet, names)
	}
	finishFleet(&cfg.Fleet)
	if len(c.errs) > 0 {
		sortErrors(c.errs, files)
		return nil, joinErrors(c.errs)
	}
	cfg.Warnings = c.warns
	cfg.Filters = make(map[string]*FilterDef, len(filters))
	for name, f := range filters {
		def := f.FilterDef
		cfg.Filters[name] = &def
	}
	return cfg, nil
}

// sub returns the table under key of t, if the key is there and is a table.
func (c *checker) sub(t map[string]any, path []string, key string) (map[string]any, bool) {
	v, ok := t[key]
	if !ok {
		return nil, false
	}
	return c.table(v, append(path[:len(path):len(path)], key))
}

// name checks a jail's or filter's name.
func (c *checker) name(path []string, name, what string) bool {
	if nameRE.MatchString(name) {
		return true
	}
	c.errorf(path, -1, "bad %s name %q: use up to 32 letters, digits, '_' and '-', starting with a letter or digit", what, name)
	return false
}

func (c *checker) daemon(t map[string]any, d *Daemon) {
	path := []string{"daemon"}
	c.known(t, path, daemonKeys...)
	key := func(k string) []string { return []string{"daemon", k} }
	if v, ok := t["state_directory"]; ok {
		if s, ok := c.str(v, key("state_directory")); ok {
			if !strings.HasPrefix(s, "/") {
				c.errorf(key("state_directory"), -1, "must be an absolute path, not %q", s)
			} else {
				d.StateDirectory = s
			}
		}
	}
	if v, ok := t["firewall"]; ok {
		if s, ok := c.oneOf(v, key("firewall"), "nftables", "none"); ok {
			d.Firewall = s
		}
	}
	if v, ok := t["table"]; ok {
		if s, ok := c.str(v, key("table")); ok {
			if nameRE.MatchString(s) {
				d.Table = s
			} else {
				c.errorf(key("table"), -1, "bad table name %q: use up to 32 letters, digits, '_' and '-'", s)
			}
		}
	}
	if v, ok := t["memory_limit"]; ok {
		if n, ok := c.size(v, key("memory_limit")); ok {
			if n > 0 && n < minMemoryLimit {
				c.errorf(key("memory_limit"), -1, "%d bytes is too little for the daemon to run in: use 0 (no limit) or at least 32M", n)
			} else {
				d.MemoryLimit = n
			}
		}
	}
}

// minMemoryLimit is the least memory_limit other than 0: below it the garbage collector would run
// all the time.
const minMemoryLimit = 32 << 20

// common applies the keys that [defaults] and each jail share onto j.
func (c *checker) common(t map[string]any, path []string, j *Jail) {
	key := func(k string) []string { return append(path[:len(path):len(path)], k) }
	s := &j.Settings
	for _, k := range sortedKeys(t) {
		v, p := t[k], key(k)
		switch k {
		case "bantime":
			if d, ok := c.duration(v, p); ok {
				s.BanTime = d
			}
		case "findtime":
			if d, ok := c.duration(v, p); ok {
				s.FindTime = d
			}
		case "maxretry":
			if n, ok := c.integer(v, p, 1, math.MaxInt32); ok {
				s.MaxRetry = n
			}
		case "max_tracked":
			if n, ok := c.integer(v, p, 0, math.MaxInt32); ok {
				s.MaxTracked = n
			}
		case "ipv6_subnet_limit":
			if n, ok := c.integer(v, p, 0, math.MaxInt32); ok {
				s.IPv6SubnetLimit = n
			}
		case "ipv6_prefix":
			if n, ok := c.integer(v, p, 1, 128); ok {
				s.IPv6Prefix = n
			}
		case "ignoreip":
			if ps, ok := c.prefixes(v, p); ok {
				s.IgnoreIP = ps
			}
		case "ignoreself":
			if b, ok := c.boolean(v, p); ok {
				s.IgnoreSelf = b
			}
		case "blocktype":
			if b, ok := c.oneOf(v, p, "reject", "drop"); ok {
				j.BlockType = b
			}
		case "protocol":
			if pr, ok := c.oneOf(v, p, "tcp", "udp", "any"); ok {
				if pr == "any" {
					pr = ""
				}
				j.Protocol = pr
			}
		case "hooks":
			c.hooks(v, p, j)
		case "ports":
			c.ports(v, p, j)
		case "increment":
			if it, ok := c.table(v, p); ok {
				c.increment(it, p, &s.Increment)
			}
		case "actions":
			c.jailActions(v, p, j)
		default:
			c.trustAfterLogin(k, v, p, &s.Trust)
		}
	}
}

func (c *checker) hooks(v any, path []string, j *Jail) {
	var seen []string
	hooks, ok := c.strs(v, path, func(i int, s string) bool {
		if s != "input" && s != "forward" {
			c.errorf(path, i, "%q is not \"input\" or \"forward\"", s)
			return false
		}
		if contains(seen, s) {
			c.errorf(path, i, "%q is listed twice", s)
			return false
		}
		seen = append(seen, s)
		return true
	})
	if !ok {
		return
	}
	if len(hooks) == 0 {
		c.errorf(path, -1, "must name at least one hook (\"input\", \"forward\")")
		return
	}
	j.Hooks = hooks
}

func (c *checker) ports(v any, path []string, j *Jail) {
	var nums []PortRange
	ports, ok := c.strs(v, path, func(i int, s string) bool {
		r, err := ParsePort(s)
		if err != nil {
			c.errorf(path, i, "%v", err)
			return false
		}
		nums = append(nums, r)
		return true
	})
	if ok {
		j.Ports, j.PortNumbers = ports, nums
	}
}

func (c *checker) increment(t map[string]any, path []string, inc *jails.Increment) {
	c.known(t, path, incrementKeys...)
	key := func(k string) []string { return append(path[:len(path):len(path)], k) }
	if v, ok := t["enabled"]; ok {
		if b, ok := c.boolean(v, key("enabled")); ok {
			inc.Enabled = b
		}
	}
	if v, ok := t["overalljails"]; ok {
		if b, ok := c.boolean(v, key("overalljails")); ok {
			inc.OverallJails = b
		}
	}
	if v, ok := t["factor"]; ok {
		if f, ok := c.number(v, key("factor")); ok {
			if f < 1 {
				c.errorf(key("factor"), -1, "must be at least 1, not %g", f)
			} else {
				inc.Factor = f
			}
		}
	}
	if v, ok := t["maxtime"]; ok {
		if d, ok := c.duration(v, key("maxtime")); ok {
			inc.MaxTime = d
		}
	}
}

// jail resolves one [jail.NAME] table over the defaults in base.
func (c *checker) jail(t map[string]any, path []string, name string, base Jail, filters map[string]*userFilter, builtins map[[2]string]*jails.Filter) *Jail {
	before := len(c.errs)
	key := func(k string) []string { return append(path[:len(path):len(path)], k) }
	c.known(t, path, append(append([]string(nil), commonKeys...), jailOnlyKeys...)...)
	j := base
	j.Name = name
	j.FilterName = name
	c.common(t, path, &j)
	if v, ok := t["enabled"]; ok {
		j.Enabled, _ = c.boolean(v, key("enabled"))
	}
	filterPath := path
	if v, ok := t["filter"]; ok {
		filterPath = key("filter")
		if s, ok := c.str(v, filterPath); ok {
			j.FilterName = s
		}
	}
	_, modeSet := t["mode"]
	if modeSet {
		if s, ok := c.str(t["mode"], key("mode")); ok {
			j.Mode = s
		}
	}
	var ownMatch bool
	if v, ok := t["journal_match"]; ok {
		j.JournalMatch, _ = c.journalMatch(v, key("journal_match"))
		ownMatch = true
	}

	matchPath := key("journal_match")
	if uf, ok := filters[j.FilterName]; ok {
		if modeSet {
			c.errorf(key("mode"), -1, "filter %q is defined in the config and has no modes (modes belong to built-in filters)", j.FilterName)
		}
		j.Filter = uf.Filter
		if !ownMatch {
			j.JournalMatch, matchPath = uf.JournalMatch, uf.path
		}
	} else if ft, _ := c.m.data["filter"].(map[string]any); ft[j.FilterName] != nil {
		// The [filter.NAME] table exists but had errors, reported already.
	} else {
		bk := [2]string{j.FilterName, j.Mode}
		f, ok := builtins[bk]
		if !ok {
			var err error
			f, err = jails.Builtin(j.FilterName, j.Mode)
			switch {
			case errors.Is(err, jails.ErrUnknownFilter):
				c.errorf(filterPath, -1, "unknown filter %q: not built in, and no [filter.%s] table", j.FilterName, j.FilterName)
			case err != nil && modeSet:
				c.errorf(key("mode"), -1, "%v", err)
			case err != nil:
				c.errorf(filterPath, -1, "%v", err)
			default:
				builtins[bk] = f
			}
		}
		if f != nil {
			j.Filter = f
			if !ownMatch {
				j.JournalMatch = f.DefaultMatch()
			}
		}
	}
	if j.Filter != nil && len(j.JournalMatch) == 0 && len(c.errs) == before {
		c.errorf(path, -1, "no journal_match: set one here or in [filter.%s], or every journal entry would be tested", j.FilterName)
	}
	if len(c.errs) > before {
		return nil
	}
	if j.Enabled {
		c.trust(j.JournalMatch, matchPath)
	}
	jj := j
	return &jj
}

// sortErrors orders errors by file (in merge order), then line and column.
func sortErrors(errs []*Error, files []string) {
	rank := make(map[string]int, len(files))
	for i, f := range files {
		rank[f] = i
	}
	sort.SliceStable(errs, func(a, b int) bool {
		x, y := errs[a], errs[b]
		if rank[x.File] != rank[y.File] {
			return rank[x.File] < rank[y.File]
		}
		if x.Line != y.Line {
			return x.Line < y.Line
		}
		return x.Col < y.Col
	})
}
