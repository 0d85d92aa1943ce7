package actions

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gaoler/gaoler/actions/whois"
	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

// Env is what the actions take from the host they run on.
type Env struct {
	Host     string   // this host's name, as mails and payloads give it (HostName)
	Redact   []string // this host's names and addresses, kept out of abuse reports (HostIdentity)
	Reporter *Reporter
	HTTP     *http.Client // nil: a client with the default transport
}

// Specs builds the actions of cfg: one Spec for every [action.NAME] table that an enabled jail uses,
// with the jails that use it.
func Specs(cfg *config.Config, env Env) []Spec {
	users := map[string]map[string]int{}
	for _, j := range cfg.Enabled() {
		for _, name := range j.Actions {
			if users[name] == nil {
				users[name] = map[string]int{}
			}
			users[name][j.Name] = j.Settings.MaxRetry
		}
	}
	client := env.HTTP
	if client == nil {
		client = &http.Client{}
	}
	var specs []Spec
	for name, jails := range users {
		a := cfg.Actions[name]
		if a == nil {
			continue // config.Load refuses this; a Config built by hand may not
		}
		kinds := map[events.Kind]bool{}
		for _, e := range a.Events {
			switch e {
			case "ban":
				kinds[events.Ban] = true
			case "unban":
				kinds[events.Unban] = true
			}
		}
		specs = append(specs, Spec{
			Name: name, Type: a.Type, Events: kinds, Jails: jails, Timeout: a.Timeout, Queue: a.Queue,
			Action: build(a, env, client), Config: a,
		})
	}
	return specs
}

// build makes the Action of one [action.NAME] table.
func build(a *config.Action, env Env, client *http.Client) Action {
	retry := DefaultRetry
	retry.Attempts = a.Retries + 1
	switch a.Type {
	case "exec":
		return &Exec{Command: a.Command, Host: env.Host}
	case "mail":
		m := &Mail{
			Name: a.Name, From: a.From, To: a.To, Host: env.Host, Lines: a.Lines, Digest: a.Digest,
			Timeout: a.Timeout, Reporter: env.Reporter,
		}
		if m.From == "" {
			m.From = DefaultFrom(env.Host)
		}
		addr := a.SMTP
		if addr == "" {
			addr = LocalMTA
		}
		m.Sender = &SMTP{Addr: addr, Hello: env.Host}
		if a.Whois {
			m.Whois = whois.New(a.WhoisServer)
			// The mail waits for the whois answer: leave it room within the action's timeout.
			m.Whois.Timeout = min(whois.DefaultTimeout, a.Timeout/2)
		}
		return m
	case "webhook":
		return &Webhook{URL: a.URL, Secret: a.Secret, Host: env.Host, Client: client, Retry: retry}
	case "abuseipdb":
		return &AbuseIPDB{URL: a.URL, Key: a.Key, Categories: a.Categories, Budget: a.DailyBudget, Redact: env.Redact, Client: client, Retry: retry}
	}
	return nil
}

// HostName returns this host's fully qualified name when the host's resolver (usually /etc/hosts)
// knows it, else its kernel host name.
func HostName() string {
	short, err := os.Hostname()
	if err != nil || short == "" {
		return "localhost"
	}
	if strings.Contains(short, ".") {
		return short
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var r net.Resolver
	addrs, err := r.LookupHost(ctx, short)
	if err != nil {
		return short
	}
	for _, a := range addrs {
		names, err := r.LookupAddr(ctx, a)
		if err != nil {
			continue
		}
		for _, n := range names {
			n = strings.TrimSuffix(n, ".")
			if strings.HasPrefix(n, short+".") {
				return n
			}
		}
	}
	return short
}

// HostIdentity returns what identifies this host in its own log lines: its names (full and short)
// and the addresses of its interfaces, loopback excluded.
func HostIdentity(host string) []string {
	out := []string{host}
	if short, _, ok := strings.Cut(host, "."); ok && short != "" {
		out = append(out, short)
	}
	if k, err := os.Hostname(); err == nil && k != "" && k != host {
		out = append(out, k)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
			out = append(out, ipn.IP.String())
		}
	}
	return out
}
