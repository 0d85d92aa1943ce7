package config

import (
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Action is one [action.NAME] table: something to run after a ban or an unban (gaoler.toml(5)). Jails
// list the actions they use in their actions key.
type Action struct {
	Name    string
	Type    string        // "exec", "mail", "webhook" or "abuseipdb"
	Events  []string      // "ban" and/or "unban"; default ["ban"]
	Timeout time.Duration // one run's limit; default DefaultActionTimeout
	Queue   int           // events that may wait for the action; default DefaultActionQueue

	// exec
	Command []string // the program, resolved to an absolute path, and its argument templates

	// mail
	To          []string
	From        string        // "" = root@<this host's name>
	SMTP        string        // "" = the local MTA (127.0.0.1:25); else "host:port"
	Whois       bool          // a whois section; default true
	WhoisServer string        // "" = follow referrals from whois.iana.org; else "host:port"
	Lines       bool          // the journal entries behind the ban; default true
	Digest      time.Duration // 0 = off

	// webhook, abuseipdb
	URL     string
	Retries int // attempts after the first; default DefaultActionRetries

	// webhook
	SecretFile string
	Secret     []byte // the file's content, trailing newline removed

	// abuseipdb
	KeyFile     string
	Key         string // the file's content, trimmed
	Categories  []int
	DailyBudget int // reports per 24 hours; default DefaultDailyBudget
}

// Defaults of an action.
const (
	DefaultActionTimeout = 30 * time.Second
	DefaultActionQueue   = 256
	DefaultActionRetries = 3
	DefaultDailyBudget   = 1000
	DefaultAbuseIPDBURL  = "https://api.abuseipdb.com/api/v2/report"
	// DefaultDigest is a mail action's digest period when it sets none.
	DefaultDigest = 5 * time.Minute
)

// ActionTypes are the values an action's type takes.
var ActionTypes = []string{"exec", "mail", "webhook", "abuseipdb"}

// PlaceholderNames are what an exec command's arguments may hold in braces ({address}).
var PlaceholderNames = []string{"event", "jail", "address", "bantime", "expires", "ban_count", "failures", "hostname"}

// actionsKeys is the key that [defaults] and every jail may set to name their actions.
var actionsKeys = []string{"actions"}

var (
	actionCommonKeys = []string{"type", "events", "timeout", "queue"}
	actionTypeKeys   = map[string][]string{
		"exec":      {"command"},
		"mail":      {"to", "from", "smtp", "whois", "whois_server", "lines", "digest"},
		"webhook":   {"url", "secret_file", "retries"},
		"abuseipdb": {"url", "key_file", "categories", "daily_budget", "retries"},
	}
)

// actions reads the [action.NAME] tables.
func (c *checker) actions(root map[string]any) map[string]*Action {
	out := map[string]*Action{}
	t, ok := c.sub(root, nil, "action")
	if !ok {
		return out
	}
	for _, name := range sortedKeys(t) {
		path := []string{"action", name}
		at, ok := c.table(t[name], path)
		if !ok || !c.name(path, name, "action") {
			continue
		}
		if a := c.action(at, path, name); a != nil {
			out[name] = a
		}
	}
	return out
}

func (c *checker) action(t map[string]any, path []string, name string) *Action {
	before := len(c.errs)
	key := func(k string) []string { return append(path[:len(path):len(path)], k) }
	a := &Action{Name: name, Events: []string{"ban"}, Timeout: DefaultActionTimeout, Queue: DefaultActionQueue,
		Whois: true, Lines: true, Digest: DefaultDigest, Retries: DefaultActionRetries, DailyBudget: DefaultDailyBudget}
	v, ok := t["type"]
	if !ok {
		c.errorf(path, -1, "no type: set type = %s", fmtList(ActionTypes))
		return nil
	}
	if a.Type, ok = c.oneOf(v, key("type"), ActionTypes...); !ok {
		return nil
	}
	c.known(t, path, append(append([]string(nil), actionCommonKeys...), actionTypeKeys[a.Type]...)...)
	for _, k := range sortedKeys(t) {
		v, p := t[k], key(k)
		switch k {
		case "events":
			c.actionEvents(v, p, a)
		case "timeout":
			if d, ok := c.duration(v, p); ok {
				a.Timeout = d
			}
		case "queue":
			if n, ok := c.integer(v, p, 1, 1<<20); ok {
				a.Queue = n
			}
		case "command":
			c.command(v, p, a)
		case "to":
			if to, ok := c.strs(v, p, func(i int, s string) bool { return c.mailAddress(p, i, s) }); ok {
				if len(to) == 0 {
					c.errorf(p, -1, "names no recipient")
				}
				a.To = to
			}
		case "from":
			if s, ok := c.str(v, p); ok && (s == "" || c.mailAddress(p, -1, s)) {
				a.From = s
			}
		case "smtp":
			if s, ok := c.str(v, p); ok && (s == "" || c.hostPort(p, s)) {
				a.SMTP = s
			}
		case "whois_server":
			if s, ok := c.str(v, p); ok && (s == "" || c.hostPort(p, s)) {
				a.WhoisServer = s
			}
		case "whois":
			a.Whois, _ = c.boolean(v, p)
		case "lines":
			a.Lines, _ = c.boolean(v, p)
		case "digest":
			if d, ok := c.durationOrOff(v, p); ok {
				a.Digest = d
			}
		case "url":
			if s, ok := c.str(v, p); ok {
				if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					c.errorf(p, -1, "%q is not an http:// or https:// URL", s)
				} else {
					a.URL = s
				}
			}
		case "retries":
			if n, ok := c.integer(v, p, 0, 10); ok {
				a.Retries = n
			}
		case "secret_file":
			if s, ok := c.str(v, p); ok {
				if b, ok := c.keyFile(p, s); ok {
					a.SecretFile, a.Secret = s, []byte(strings.TrimRight(string(b), "\r\n"))
				}
			}
		case "key_file":
			if s, ok := c.str(v, p); ok {
				if b, ok := c.keyFile(p, s); ok {
					a.KeyFile, a.Key = s, strings.TrimSpace(string(b))
				}
			}
		case "categories":
			c.categories(v, p, a)
		case "daily_budget":
			if n, ok := c.integer(v, p, 1, math.MaxInt32); ok {
				a.DailyBudget = n
			}
		}
	}
	switch a.Type {
	case "exec":
		if _, ok := t["command"]; !ok {
			c.errorf(path, -1, `no command: set command = ["/path/to/program", "{address}", ...]`)
		}
	case "mail":
		if _, ok := t["to"]; !ok {
			c.errorf(path, -1, `no recipient: set to = ["admin@example.org"]`)
		}
	case "webhook":
		if _, ok := t["url"]; !ok {
			c.errorf(path, -1, `no url: set url = "https://..."`)
		}
	case "abuseipdb":
		if _, ok := t["url"]; !ok {
			a.URL = DefaultAbuseIPDBURL
		}
		if _, ok := t["key_file"]; !ok {
			c.errorf(path, -1, `no key_file: set key_file = "/etc/gaoler/abuseipdb.key" (a file holding the API key)`)
		}
		if _, ok := t["categories"]; !ok {
			c.errorf(path, -1, "no categories: set categories = [18, 22] (brute force, SSH), see https://www.abuseipdb.com/categories")
		}
		if contains(a.Events, "unban") {
			c.errorf(key("events"), -1, `abuseipdb reports bans only: set events = ["ban"]`)
		}
	}
	if len(c.errs) > before {
		return nil
	}
	return a
}

func (c *checker) actionEvents(v any, p []string, a *Action) {
	var seen []string
	evs, ok := c.strs(v, p, func(i int, s string) bool {
		if s != "ban" && s != "unban" {
			c.errorf(p, i, "%q is not \"ban\" or \"unban\"", s)
			return false
		}
		if contains(seen, s) {
			c.errorf(p, i, "%q is listed twice", s)
			return false
		}
		seen = append(seen, s)
		return true
	})
	if !ok {
		return
	}
	if len(evs) == 0 {
		c.errorf(p, -1, `names no event: list "ban" and/or "unban", or take the action out of the jails' actions`)
		return
	}
	a.Events = evs
}

// command checks an exec action's command: a program that exists and may be run (an absolute path,
// or a name found on PATH now and kept as its absolute path), and argument templates with known
// placeholders only.
func (c *checker) command(v any, p []string, a *Action) {
	args, ok := c.strs(v, p, func(i int, s string) bool {
		if err := checkTemplate(s); err != nil {
			c.errorf(p, i, "%v", err)
			return false
		}
		return true
	})
	if !ok {
		return
	}
	if len(args) == 0 {
		c.errorf(p, -1, "is empty: name the program to run")
		return
	}
	prog := args[0]
	if strings.Contains(prog, "{") {
		c.errorf(p, 0, "the program must be a fixed path, not a placeholder")
		return
	}
	if !filepath.IsAbs(prog) {
		found, err := exec.LookPath(prog)
		if err != nil {
			c.errorf(p, 0, "program %q not found on PATH: give its absolute path", prog)
			return
		}
		if prog, err = filepath.Abs(found); err != nil {
			c.errorf(p, 0, "%v", err)
			return
		}
	}
	st, err := os.Stat(prog)
	switch {
	case err != nil:
		c.errorf(p, 0, "program %s: %s", prog, readError(err))
		return
	case !st.Mode().IsRegular():
		c.errorf(p, 0, "program %s is not a regular file", prog)
		return
	case st.Mode().Perm()&0o111 == 0:
		c.errorf(p, 0, "program %s is not executable", prog)
		return
	}
	a.Command = append([]string{prog}, args[1:]...)
}

// checkTemplate reports an unknown placeholder or an unbalanced brace in an argument; "{{" and "}}"
// are literal braces.
func checkTemplate(arg string) error {
	for i := 0; i < len(arg); i++ {
		switch {
		case strings.HasPrefix(arg[i:], "{{") || strings.HasPrefix(arg[i:], "}}"):
			i++
		case arg[i] == '{':
			end := strings.IndexByte(arg[i:], '}')
			if end < 0 {
				return fmt.Errorf("unclosed { in %q (write {{ for a literal brace)", arg)
			}
			if name := arg[i+1 : i+end]; !contains(PlaceholderNames, name) {
				return fmt.Errorf("unknown placeholder {%s} (known: {%s})", name, strings.Join(PlaceholderNames, "} {"))
			}
			i += end
		case arg[i] == '}':
			return fmt.Errorf("lone } in %q (write }} for a literal brace)", arg)
		}
	}
	return nil
}

func (c *checker) mailAddress(p []string, i int, s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || strings.ContainsAny(s, "\r\n") {
		c.errorf(p, i, "%q is not a mail address (write it alone, as user@example.org)", s)
		return false
	}
	return true
}

func (c *checker) hostPort(p []string, s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err == nil && host != "" {
		if n, perr := strconv.Atoi(port); perr == nil && n > 0 && n < 65536 {
			return true
		}
	}
	c.errorf(p, -1, "%q is not host:port (such as \"smtp.example.org:587\" or \"[2001:db8::1]:25\")", s)
	return false
}

// keyFile reads a secret from the file at s, which must be an absolute path to a readable, non-empty
// file.
func (c *checker) keyFile(p []string, s string) ([]byte, bool) {
	if !filepath.IsAbs(s) {
		c.errorf(p, -1, "must be an absolute path, not %q", s)
		return nil, false
	}
	b, err := os.ReadFile(s)
	if err != nil {
		c.errorf(p, -1, "cannot read %s: %s", s, readError(err))
		return nil, false
	}
	if strings.TrimSpace(string(b)) == "" {
		c.errorf(p, -1, "%s is empty", s)
		return nil, false
	}
	return b, true
}

func (c *checker) categories(v any, p []string, a *Action) {
	list, ok := v.([]any)
	if !ok {
		c.wrongType(p, -1, v, "an array of integers")
		return
	}
	var out []int
	for i, e := range list {
		n, ok := e.(int64)
		if !ok {
			c.wrongType(p, i, e, "an integer")
			return
		}
		if n < 1 || n > 30 {
			c.errorf(p, i, "%d is not an AbuseIPDB category (1 to 30; see https://www.abuseipdb.com/categories)", n)
			return
		}
		out = append(out, int(n))
	}
	if len(out) == 0 {
		c.errorf(p, -1, "names no category")
		return
	}
	a.Categories = out
}

// jailActions reads the actions key of [defaults] or a jail.
func (c *checker) jailActions(v any, p []string, j *Jail) {
	names, ok := c.strs(v, p, nil)
	if ok {
		j.Actions, j.actionsAt = names, p
	}
}

// checkJailActions reports the actions a jail names that no [action.NAME] table defines, at the key
// that named them (the jail's own, or [defaults]').
func (c *checker) checkJailActions(jails []*Jail, actions map[string]*Action, defined map[string]any) {
	reported := map[string]bool{}
	for _, j := range jails {
		for i, name := range j.Actions {
			if actions[name] != nil {
				continue
			}
			where := keyName(j.actionsAt, i)
			if reported[where] {
				continue
			}
			reported[where] = true
			if defined[name] != nil {
				continue // the table exists but had errors, reported already
			}
			known := sortedKeys(defined)
			if s := closest(name, known); s != "" {
				c.errorf(j.actionsAt, i, "unknown action %q (did you mean %q?)", name, s)
			} else {
				c.errorf(j.actionsAt, i, "unknown action %q: no [action.%s] table", name, name)
			}
		}
	}
}
