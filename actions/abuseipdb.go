package actions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gaoler/gaoler/events"
)

// Defaults of an AbuseIPDB action.
const (
	AbuseIPDBURL = "https://api.abuseipdb.com/api/v2/report"
	// AbuseIPDBInterval is how long an address is not reported again: AbuseIPDB refuses a second report
	// of one address by one user within 15 minutes.
	AbuseIPDBInterval = 15 * time.Minute
	// DefaultDailyBudget is how many reports a day the action makes at most (the free plan's quota).
	DefaultDailyBudget = 1000
	// maxComment is the longest comment AbuseIPDB takes.
	maxComment = 1024
)

// AbuseIPDB reports banned addresses to AbuseIPDB's v2 report API: the address, the categories, a
// comment made of the journal entries behind the ban with this host's own names and addresses
// removed, and the time of the ban. It never reports one address twice within 15 minutes, stays
// within a daily budget, and after a 429 waits as long as Retry-After says before it asks again.
type AbuseIPDB struct {
	URL        string // AbuseIPDBURL unless overridden (a proxy, a test)
	Key        string
	Categories []int
	Budget     int      // reports per 24 hours (DefaultDailyBudget when 0)
	Redact     []string // this host's names and addresses, removed from comments
	Client     *http.Client
	Retry      Retry
	Now        func() time.Time

	mu      sync.Mutex
	last    map[netip.Prefix]time.Time // when each address was last reported
	sent    []time.Time                // the reports of the last 24 hours, oldest first
	blocked time.Time                  // a 429 asked us to wait until then
}

func (a *AbuseIPDB) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Run reports a ban. Unbans are not reported.
func (a *AbuseIPDB) Run(ctx context.Context, ev events.Event) (Result, error) {
	if ev.Kind != events.Ban {
		return Result{Skipped: "AbuseIPDB takes reports of bans only"}, nil
	}
	if reason := a.reserve(ev.Prefix); reason != "" {
		return Result{Skipped: reason}, nil
	}
	form := url.Values{
		"ip":         {ev.Prefix.Addr().String()},
		"categories": {joinInts(a.Categories)},
		"comment":    {a.Comment(ev)},
		"timestamp":  {ev.BannedAt.UTC().Format(time.RFC3339)},
	}
	body := form.Encode()
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	code, _, err := a.Retry.do(ctx, client, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Key", a.Key)
		req.Header.Set("User-Agent", "gaolerd")
		return req, nil
	})
	if err != nil {
		a.release(ev.Prefix, err)
		return Result{}, err
	}
	return Result{Note: fmt.Sprintf("reported %s (HTTP %d)", ev.Prefix.Addr(), code)}, nil
}

// reserve takes a report out of the budget for p, or says why it may not be made now.
func (a *AbuseIPDB) reserve(p netip.Prefix) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if now.Before(a.blocked) {
		return fmt.Sprintf("AbuseIPDB asked to wait until %s (HTTP 429)", a.blocked.UTC().Format(time.RFC3339))
	}
	if a.last == nil {
		a.last = map[netip.Prefix]time.Time{}
	}
	for q, t := range a.last {
		if now.Sub(t) >= AbuseIPDBInterval {
			delete(a.last, q)
		}
	}
	if t, ok := a.last[p]; ok {
		return fmt.Sprintf("%s was reported %s ago; AbuseIPDB takes one report per %s", p.Addr(), now.Sub(t).Round(time.Second), AbuseIPDBInterval)
	}
	for len(a.sent) > 0 && now.Sub(a.sent[0]) >= 24*time.Hour {
		a.sent = a.sent[1:]
	}
	budget := a.Budget
	if budget <= 0 {
		budget = DefaultDailyBudget
	}
	if len(a.sent) >= budget {
		return fmt.Sprintf("the daily budget of %d reports is spent", budget)
	}
	a.last[p] = now
	a.sent = append(a.sent, now)
	return ""
}

// release gives back a report that failed, so the address may be reported on its next ban; after a
// 429 no report is made until its Retry-After has passed.
func (a *AbuseIPDB) release(p netip.Prefix, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusTooManyRequests {
		wait := se.retryAfter
		if wait <= 0 {
			wait = time.Hour
		}
		a.blocked = a.now().Add(wait)
		return // the report counted against the quota: keep it spent
	}
	delete(a.last, p)
	if n := len(a.sent); n > 0 {
		a.sent = a.sent[:n-1]
	}
}

// Comment is the report's comment: the journal entries behind the ban, one per line, with this host's
// names and addresses replaced by "[this host]", cut to AbuseIPDB's 1024 characters.
func (a *AbuseIPDB) Comment(ev events.Event) string {
	redact := append([]string(nil), a.Redact...)
	sort.Slice(redact, func(i, j int) bool { return len(redact[i]) > len(redact[j]) })
	var b strings.Builder
	for _, e := range ev.Entries {
		line := redactWords(bodyText(e.Message), redact, "[this host]")
		if b.Len()+len(line)+1 > maxComment {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line)
	}
	if b.Len() == 0 {
		return fmt.Sprintf("banned by gaoler (jail %s)", ev.Jail)
	}
	return b.String()
}

// redactWords replaces, in one pass, every whole-word occurrence of the words (longest first, ASCII
// case ignored) with repl. A word is whole when no letter, digit, '-', '.', '_' or ':' touches it, so
// the host name "host" leaves "localhost" alone and the address 192.0.2.1 leaves 192.0.2.10 alone.
func redactWords(s string, words []string, repl string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if i > 0 && wordByte(s[i-1]) {
			i++
			continue
		}
		hit := 0
		for _, w := range words {
			if w != "" && len(s)-i >= len(w) && strings.EqualFold(s[i:i+len(w)], w) && (i+len(w) == len(s) || !wordByte(s[i+len(w)])) {
				hit = len(w)
				break
			}
		}
		if hit == 0 {
			i++
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(repl)
		i += hit
		last = i
	}
	b.WriteString(s[last:])
	return b.String()
}

func wordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':'
}

func joinInts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// Close does nothing: the action's limits live in memory only.
func (a *AbuseIPDB) Close() {}
