package config

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gaoler/gaoler/jails"
)

// DefaultPath is where gaolerd and gaoler look for the configuration when no --config is given.
const DefaultPath = "/etc/gaoler/gaoler.toml"

// Config is a loaded, validated and resolved configuration.
type Config struct {
	Daemon   Daemon
	Journal  Journal
	Fleet    Fleet                 // [fleet]: sharing bans with other hosts (config/fleet.go)
	Jails    []*Jail               // every jail written in the files, enabled or not, in name order, defaults inherited
	Filters  map[string]*FilterDef // the [filter.NAME] tables, compiled
	Actions  map[string]*Action    // the [action.NAME] tables, checked
	Files    []string              // the files read, in the order they were merged
	Warnings []string              // "file:line:col: key: ..." lines about risky but valid settings
}

// Daemon holds the [daemon] table.
type Daemon struct {
	StateDirectory string // default /var/lib/gaoler
	Firewall       string // "nftables" (default) or "none"
	Table          string // the nftables table of family inet; default "gaoler"
	// MemoryLimit is the soft limit, in bytes, of the memory the Go runtime manages (see package
	// memlimit): near it the garbage collector works harder instead of letting the heap grow to twice
	// what is live; a live heap past it raises it. 0: no limit (GOMEMLIMIT, if set, wins).
	MemoryLimit int64
}

// DefaultMemoryLimit is [daemon] memory_limit when the config does not set it: a flood of 200,000
// distinct offenders, all banned, stays under 200 MiB of anonymous memory with it (README.md).
const DefaultMemoryLimit = 160 << 20

// Journal holds the [journal] table.
type Journal struct {
	Directory string // "" reads this host's journal; else the journal files in this folder
	// HotTime is how long the reader keeps polling the journal about every millisecond after a live
	// failure, instead of waiting for journald's notification (up to ~480 ms late).
	HotTime time.Duration
}

// DefaultHotTime is [journal] hot_time when the config does not set it.
const DefaultHotTime = 30 * time.Second

// Jail is one [jail.NAME] table with the [defaults] it inherits applied.
type Jail struct {
	Name         string
	FilterName   string // the jail's filter: a built-in name or a [filter.NAME] table; default: the jail's name
	Mode         string // the built-in filter's mode ("normal" unless set)
	Protocol     string // "tcp" (default), "udp", or "" for any protocol
	BlockType    string // "reject" (default) or "drop"
	Enabled      bool
	Ports        []string    // as written: "ssh", "22", "8000-8080"; empty means every port
	PortNumbers  []PortRange // Ports resolved, in the same order
	Hooks        []string    // "input" (default) and/or "forward"
	JournalMatch []string    // the jail's own journal_match, else its filter's
	Filter       *jails.Filter
	Settings     jails.Settings
	Actions      []string // the [action.NAME] tables run after the jail's bans and unbans, in order

	actionsAt []string // the key that set Actions ([defaults] or the jail's own), for messages
}

// FilterDef is a [filter.NAME] table: a filter defined in the configuration.
type FilterDef struct {
	Name         string
	JournalMatch []string // journalctl-style terms; nil when the table has none
	FailRegex    []string // as written, with <HOST>
	IgnoreRegex  []string
	Filter       *jails.Filter // compiled
}

// Enabled returns the enabled jails, in name order.
func (c *Config) Enabled() []*Jail {
	var out []*Jail
	for _, j := range c.Jails {
		if j.Enabled {
			out = append(out, j)
		}
	}
	return out
}

// Summary says in one line what the configuration holds, as `gaoler check-config` and `gaolerd
// --check` print it: "2 jails enabled (sshd, web), 3 files read".
func (c *Config) Summary() string {
	var names []string
	for _, j := range c.Enabled() {
		names = append(names, j.Name)
	}
	s := Plural(len(names), "jail") + " enabled"
	if len(names) > 0 {
		s += " (" + strings.Join(names, ", ") + ")"
	}
	return s + ", " + Plural(len(c.Files), "file") + " read"
}

// Plural writes n and the noun, with an s unless n is 1: "1 jail", "2 jails".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Jail returns the jail with the given name, or nil.
func (c *Config) Jail(name string) *Jail {
	for _, j := range c.Jails {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// source is one parsed file: its name, where its keys are, and its values.
type source struct {
	name string
	keys map[string]position
	data map[string]any
}

// Load reads the configuration at path and the drop-ins path's folder holds in jail.d/*.toml, merges
// them in that order (a drop-in's key replaces the same key of an earlier file; tables merge key by key;
// arrays are replaced whole), and resolves the jails. The error, if any, joins one *Error per mistake
// found in any file; the Config is nil then.
func Load(path string) (*Config, error) {
	files := []string{path}
	dropins, err := filepath.Glob(filepath.Join(filepath.Dir(path), "jail.d", "*.toml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dropins)
	files = append(files, dropins...)

	var srcs []*source
	var errs []*Error
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, &Error{File: f, Msg: readError(err)})
			continue
		}
		s, e := parseSource(f, string(text))
		if e != nil {
			errs = append(errs, e)
			continue
		}
		srcs = append(srcs, s)
	}
	if len(errs) > 0 {
		// A file that cannot be read or parsed would make every later message about a merged
		// value a guess; report the syntax first.
		return nil, joinErrors(errs)
	}
	return resolve(files, srcs)
}

// Parse loads a configuration from text, as if it were the only file, named name in messages.
// It is Load without the file system, for tests and fuzzing.
func Parse(name, text string) (*Config, error) {
	s, e := parseSource(name, text)
	if e != nil {
		return nil, joinErrors([]*Error{e})
	}
	return resolve([]string{name}, []*source{s})
}

func readError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// parseSource decodes one file's TOML and finds where its keys are.
func parseSource(name, text string) (*source, *Error) {
	data := make(map[string]any)
	if _, err := toml.Decode(text, &data); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Line: pe.Position.Line, Col: max(pe.Position.Col, 1), Key: pe.LastKey, Msg: pe.Message}
		}
		return nil, &Error{File: name, Line: 1, Col: 1, Msg: err.Error()}
	}
	return &source{name: name, keys: locateKeys(text), data: data}, nil
}

func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// merged is the union of all files' values, remembering for each key which file set it last.
type merged struct {
	data   map[string]any
	origin map[string]*source // toml.Key string -> the file that wrote the value
	srcs   []*source
}

func mergeSources(srcs []*source) *merged {
	m := &merged{data: make(map[string]any), origin: make(map[string]*source), srcs: srcs}
	for _, s := range srcs {
		m.merge(m.data, s.data, nil, s)
	}
	return m
}

func (m *merged) merge(dst, src map[string]any, path []string, s *source) {
	for k, v := range src {
		p := append(path[:len(path):len(path)], k)
		m.origin[toml.Key(p).String()] = s
		sub, isTable := v.(map[string]any)
		old, wasTable := dst[k].(map[string]any)
		switch {
		case isTable && wasTable:
			m.merge(old, sub, p, s)
		case isTable:
			t := make(map[string]any, len(sub))
			dst[k] = t
			m.merge(t, sub, p, s)
		default:
			dst[k] = v
		}
	}
}

// at says where the key path (and, if elem >= 0, its element elem) was written: the file that set
// it last, and the position there. A key no file wrote (a missing one) is placed at its nearest table.
func (m *merged) at(path []string, elem int) (file string, p position) {
	for n := len(path); n > 0; n-- {
		k := toml.Key(path[:n]).String()
		s := m.origin[k]
		if s == nil {
			continue
		}
		if elem >= 0 && n == len(path) {
			if p, ok := s.keys[k+"["+strconv.Itoa(elem)+"]"]; ok {
				return s.name, p
			}
		}
		if p, ok := s.keys[k]; ok {
			return s.name, p
		}
		return s.name, position{1, 1}
	}
	if len(m.srcs) > 0 {
		return m.srcs[0].name, position{1, 1}
	}
	return "", position{}
}

// keyName spells a key path with an optional element index, for messages.
func keyName(path []string, elem int) string {
	k := toml.Key(path).String()
	if elem >= 0 {
		k += "[" + strconv.Itoa(elem) + "]"
	}
	return k
}

// fmtList quotes names for messages: "a", "b" or "c".
func fmtList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
