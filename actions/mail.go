package actions

import (
	"context"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gaoler/gaoler/actions/whois"
	"github.com/gaoler/gaoler/events"
)

// Sender delivers one mail; *SMTP implements it.
type Sender interface {
	Send(ctx context.Context, from string, to []string, msg []byte) error
}

// Mail mails the admin about bans (and unbans, when its events ask for them): what was banned, why,
// the journal entries behind it and a whois report, as fail2ban's action_mwl does. With a Digest
// period, only the first ban of a period is mailed alone; when more follow within the period, one
// summary listing every ban of the period is mailed at its end, and periods go on while bans do.
type Mail struct {
	Name   string // the action's name, for the digest's journal entry
	From   string
	To     []string
	Host   string
	Sender Sender
	Whois  *whois.Client // nil: no whois section
	Lines  bool          // include the journal entries
	Digest time.Duration // 0: every event is mailed alone
	// Timeout bounds a digest's delivery, which runs outside any event's run.
	Timeout  time.Duration
	Reporter *Reporter
	// Now and After are the clock (time.Now, time.After); tests replace them.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time

	mu      sync.Mutex
	active  bool           // a digest period runs
	period  []events.Event // every ban of the period, the one mailed alone included
	pending int            // bans of the period not mailed yet
	stop    chan struct{}  // closed by Close
	wg      sync.WaitGroup
	closed  bool
}

func (m *Mail) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Run mails ev, or holds it for the period's digest.
func (m *Mail) Run(ctx context.Context, ev events.Event) (Result, error) {
	if m.Digest > 0 && ev.Kind == events.Ban {
		m.mu.Lock()
		if m.stop == nil {
			m.stop = make(chan struct{})
		}
		if m.active && !m.closed {
			m.period = append(m.period, ev)
			m.pending++
			m.mu.Unlock()
			return Result{Held: true}, nil
		}
		if !m.closed {
			m.active, m.period, m.pending = true, []events.Event{ev}, 0
			m.startPeriod()
		}
		m.mu.Unlock()
	}
	msg := m.single(ctx, ev)
	if err := m.Sender.Send(ctx, m.From, m.To, msg); err != nil {
		return Result{}, err
	}
	return Result{Note: "mailed to " + strings.Join(m.To, ", ")}, nil
}

// startPeriod starts the timer of a digest period; m.mu is held.
func (m *Mail) startPeriod() {
	after := m.After
	if after == nil {
		after = time.After
	}
	tick := after(m.Digest)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-tick:
			m.endPeriod(false)
		case <-m.stop:
		}
	}()
}

// endPeriod mails the digest of the period that ended, if bans are waiting in it, and starts the next
// period (bans go on); with none waiting, the next ban is mailed alone again.
func (m *Mail) endPeriod(closing bool) {
	m.mu.Lock()
	list, pending := m.period, m.pending
	m.period, m.pending = nil, 0
	m.active = pending > 0 && !closing && !m.closed
	if m.active {
		m.startPeriod()
	}
	m.mu.Unlock()
	if pending == 0 {
		return
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var msg []byte
	if len(list) == 1 {
		msg = m.single(ctx, list[0])
	} else {
		msg = m.digest(list)
	}
	start := m.now()
	if err := m.Sender.Send(ctx, m.From, m.To, msg); err != nil {
		if len(list) == 1 {
			m.Reporter.Failed(m.Name, "mail", &list[0], err)
		} else {
			m.Reporter.Failed(m.Name, "mail", nil, fmt.Errorf("digest of %d bans: %w", len(list), err))
		}
		return
	}
	m.Reporter.Sent(m.Name, "mail", nil, fmt.Sprintf("digest of %d bans mailed to %s", len(list), strings.Join(m.To, ", ")), m.now().Sub(start))
}

// Close mails a digest still waiting, and stops the period's timer.
func (m *Mail) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	if m.stop != nil {
		close(m.stop)
	}
	m.mu.Unlock()
	m.wg.Wait()
	m.endPeriod(true)
}

// headers writes the headers every mail of the action has.
func (m *Mail) headers(msg *message, subject string) {
	now := m.now()
	msg.header("From", m.From)
	msg.header("To", strings.Join(m.To, ", "))
	msg.header("Subject", subject)
	msg.header("Date", now.Format(time.RFC1123Z))
	msg.header("Message-ID", messageID(now, m.Host))
	msg.header("Auto-Submitted", "auto-generated")
	msg.header("X-Mailer", "gaolerd")
}

// single is the mail about one event.
func (m *Mail) single(ctx context.Context, ev events.Event) []byte {
	var msg message
	addr := ev.Address()
	if ev.Kind == events.Ban {
		m.headers(&msg, fmt.Sprintf("[gaoler] %s: banned %s on %s", ev.Jail, addr, m.Host))
		msg.line(fmt.Sprintf("gaolerd banned %s in jail %s on %s.", addr, ev.Jail, m.Host))
	} else {
		m.headers(&msg, fmt.Sprintf("[gaoler] %s: unbanned %s on %s", ev.Jail, addr, m.Host))
		msg.line(fmt.Sprintf("gaolerd lifted the ban of %s in jail %s on %s (%s).", addr, ev.Jail, m.Host, ev.Reason))
	}
	msg.line("")
	field := func(k, v string) { msg.line(fmt.Sprintf("  %-11s %s", k+":", v)) }
	field("Banned at", stamp(ev.BannedAt))
	if ev.Kind == events.Ban {
		field("Expires", fmt.Sprintf("%s (after %s)", stamp(ev.Expires), ev.Expires.Sub(ev.BannedAt).Round(time.Second)))
	}
	field("Ban count", fmt.Sprint(ev.Count))
	field("Origin", ev.Origin.String())
	if ev.Rule != "" {
		field("Rule", ev.Rule)
	}
	if m.Lines && len(ev.Entries) > 0 {
		msg.line("")
		msg.line(fmt.Sprintf("The journal entries behind the ban (%d):", len(ev.Entries)))
		msg.line("")
		for _, e := range ev.Entries {
			msg.line("  " + stamp(e.Time) + "  " + e.Message)
		}
	}
	if m.Whois != nil && ev.Kind == events.Ban {
		msg.line("")
		text, err := m.Whois.Lookup(ctx, ev.Prefix.Addr())
		if err != nil {
			msg.line(fmt.Sprintf("Whois for %s: lookup failed: %v", ev.Prefix.Addr(), err))
		} else {
			msg.line(fmt.Sprintf("Whois for %s:", ev.Prefix.Addr()))
			msg.line("")
			msg.text(text)
		}
	}
	msg.line("")
	msg.line("-- ")
	msg.line(fmt.Sprintf("gaolerd on %s. \"gaoler why %s\" shows this ban again.", m.Host, addr))
	return msg.bytes()
}

// digest is the summary of a period's bans.
func (m *Mail) digest(list []events.Event) []byte {
	var msg message
	jails := map[string]bool{}
	for _, ev := range list {
		jails[ev.Jail] = true
	}
	names := make([]string, 0, len(jails))
	for j := range jails {
		names = append(names, j)
	}
	sort.Strings(names)
	first, last := list[0].BannedAt, list[len(list)-1].BannedAt
	m.headers(&msg, fmt.Sprintf("[gaoler] %s: %d bans on %s", strings.Join(names, ", "), len(list), m.Host))
	msg.line(fmt.Sprintf("gaolerd on %s made %d bans from %s to %s (a digest: more than one ban per %s).",
		m.Host, len(list), stamp(first), stamp(last), m.Digest))
	msg.line("")
	msg.line(fmt.Sprintf("  %-24s %-10s %-39s %5s  %s", "BANNED AT", "JAIL", "ADDRESS", "COUNT", "RULE"))
	for _, ev := range list {
		msg.line(fmt.Sprintf("  %-24s %-10s %-39s %5d  %s", stamp(ev.BannedAt), ev.Jail, ev.Address(), ev.Count, ev.Rule))
	}
	if m.Lines {
		msg.line("")
		msg.line("The last journal entry behind each ban:")
		msg.line("")
		for _, ev := range list {
			if n := len(ev.Entries); n > 0 {
				msg.line(fmt.Sprintf("  %s  %s", ev.Address(), ev.Entries[n-1].Message))
			}
		}
	}
	msg.line("")
	msg.line("-- ")
	msg.line(fmt.Sprintf("gaolerd on %s. \"gaoler why ADDRESS\" shows each ban with its entries.", m.Host))
	return msg.bytes()
}

// stamp formats a time for a mail, in UTC.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// DefaultFrom returns the sender a mail action uses when from is not set: root@host.
func DefaultFrom(host string) string { return "root@" + host }

// CheckAddress reports whether s is a plain mail address ("admin@example.org"), as from and to take.
func CheckAddress(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("bad mail address %q: %v", s, err)
	}
	if a.Address != s || a.Name != "" {
		return fmt.Errorf("bad mail address %q: write the address alone, as user@host", s)
	}
	return nil
}
