package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/metrics"
)

// eventSink receives the engine's decisions (holding the daemon's mutex) and queues their
// announcements (journal entry, bus signal) until the firewall change is in the kernel.
type eventSink struct{ d *Daemon }

func (s eventSink) Banned(b jails.Ban) {
	d := s.d
	key := banKey{b.Jail, b.Prefix.String()}
	if d.preCrash[key] {
		// The kernel had it before this start: it is a ban re-derived from entries the checkpoint had
		// not covered, already announced once.
		delete(d.preCrash, key)
		d.restoredHits++
		return
	}
	addr := prefixString(b.Prefix)
	bantime := b.Expires.Sub(b.BannedAt).Round(time.Second)
	d.pending = append(d.pending, func() {
		d.log.Event(events.MsgBan, sdjournal.PriNotice, map[string]string{
			events.FieldJail: b.Jail, events.FieldAddress: addr,
			events.FieldBanTime:  strconv.FormatInt(int64(bantime/time.Second), 10),
			events.FieldExpires:  strconv.FormatInt(b.Expires.UnixMicro(), 10),
			events.FieldBanCount: strconv.Itoa(b.Count),
		}, "Banned %s in jail %s for %s (ban #%d, until %s)", addr, b.Jail, bantime, b.Count,
			b.Expires.Local().Format("2006-01-02 15:04:05"))
		d.tally.Observe(events.Event{Kind: events.Ban, Jail: b.Jail, Prefix: b.Prefix, Origin: b.Origin})
		if d.bus != nil {
			d.bus.Banned(b.Jail, addr, uint64(b.Expires.UnixMicro()), uint32(b.Count))
			d.bus.CountersChanged(b.Jail)
		}
	})
}

func (s eventSink) Unbanned(b jails.Ban, reason string) {
	d := s.d
	addr := prefixString(b.Prefix)
	d.pending = append(d.pending, func() {
		d.log.Event(events.MsgUnban, sdjournal.PriNotice, map[string]string{
			events.FieldJail: b.Jail, events.FieldAddress: addr, events.FieldReason: reason,
			events.FieldBanCount: strconv.Itoa(b.Count),
		}, "Unbanned %s in jail %s (%s)", addr, b.Jail, reason)
		d.tally.Observe(events.Event{Kind: events.Unban, Jail: b.Jail, Prefix: b.Prefix, Reason: reason})
		if d.bus != nil {
			d.bus.Unbanned(b.Jail, addr, reason)
			d.bus.CountersChanged(b.Jail)
		}
	})
}

func (s eventSink) Failed(jail string, addr netip.Addr, at time.Time, rule string) {
	d := s.d
	if !d.failureLog.allow(d.batchNow, at) {
		return // counted, not logged (a backlog, or a flood); handleBatch tells the bus once per batch
	}
	a := addr.String()
	d.pending = append(d.pending, func() {
		d.log.Event(events.MsgFailure, sdjournal.PriDebug, map[string]string{
			events.FieldJail: jail, events.FieldAddress: a, events.FieldRule: rule,
		}, "Failure from %s in jail %s (rule: %s)", a, jail, rule)
		if d.bus != nil {
			d.bus.CountersChanged(jail)
		}
	})
}

// prefixString prints a single address without its /32 or /128, and a wider prefix as a CIDR.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// backend is the daemon as the bus sees it: every call runs on the main loop.
type backend struct{ d *Daemon }

func (b backend) Version() string { return b.d.opts.Version }

func (b backend) Reader() string {
	var mode string
	b.d.do(func() { mode = b.d.readerMode() })
	return mode
}

func (b backend) JailNames() []string {
	var names []string
	b.d.do(func() {
		for _, j := range b.d.active {
			names = append(names, j.name)
		}
	})
	return names
}

func (b backend) Jail(name string) (bus.JailInfo, error) {
	var info bus.JailInfo
	var err error
	b.d.do(func() {
		cfg := b.d.jailConfig(name)
		if cfg == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, name)
			return
		}
		st, serr := b.d.engine.Stats(name)
		if serr != nil {
			err = busError(serr)
			return
		}
		info = bus.JailInfo{
			Name: name, Filter: cfg.FilterName, JournalMatch: cfg.JournalMatch,
			FindTime: uint64(cfg.Settings.FindTime / time.Second), BanTime: uint64(cfg.Settings.BanTime / time.Second),
			MaxRetry:        uint32(cfg.Settings.MaxRetry),
			CurrentlyFailed: uint32(st.CurrentlyFailed), TotalFailed: st.TotalFailed,
			CurrentlyBanned: uint32(st.CurrentlyBanned), TotalBanned: st.TotalBanned,
		}
	})
	return info, err
}

func (b backend) Ban(jail, address string, seconds uint64) (bus.BanInfo, error) {
	var ban jails.Ban
	var err error
	b.d.do(func() {
		ban, err = b.d.engine.Ban(jail, address, time.Duration(seconds)*time.Second, events.Origin{Kind: events.OriginManual})
		b.d.afterManual(err)
	})
	if err != nil {
		return bus.BanInfo{}, busError(err)
	}
	return banInfo(ban), nil
}

func (b backend) Unban(jail, address string) error {
	var err error
	b.d.do(func() {
		_, err = b.d.engine.Unban(jail, address)
		b.d.afterManual(err)
	})
	return busError(err)
}

func (b backend) UnbanAll(jail string) (uint32, error) {
	var n int
	var err error
	b.d.do(func() {
		n, err = b.d.engine.UnbanAll(jail)
		b.d.afterManual(err)
	})
	return uint32(n), busError(err)
}

func (b backend) ListBans(jail string) ([]bus.BanInfo, error) {
	var out []bus.BanInfo
	var err error
	b.d.do(func() {
		if b.d.jailConfig(jail) == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		for _, ban := range b.d.engine.Bans(jail) {
			out = append(out, banInfo(ban))
		}
	})
	return out, err
}

func (b backend) Reload() error {
	var err error
	if derr := b.d.do(func() { err = b.d.reload() }); derr != nil {
		return derr
	}
	var cerr *ConfigError
	if errors.As(err, &cerr) {
		return fmt.Errorf("%w: %v (the running configuration stays)", bus.ErrInvalidConfig, cerr.Err)
	}
	return err
}

// Metrics returns the Prometheus text of one scrape, taken on the main loop.
func (b backend) Metrics() (string, error) {
	return metrics.Text(metrics.NewRegistry(b.d.metricsSource(), b.d.opts.Version))
}

// afterManual makes a manual ban or unban take effect at once: in the kernel, announced, and in the
// checkpoint, so a restart (even after SIGKILL) neither forgets a manual ban nor re-bans an address the
// admin forgave.
func (d *Daemon) afterManual(err error) {
	if err != nil {
		return
	}
	d.commit()
	d.saveNow()
}

// jailConfig returns the enabled jail called name, or nil.
func (d *Daemon) jailConfig(name string) *configJail {
	for _, j := range d.cfg.Jails {
		if j.Name == name && j.Enabled {
			return j
		}
	}
	return nil
}

// readerMode describes the journal reader for status: "idle" or "hot, 12s left".
func (d *Daemon) readerMode() string {
	if d.reader == nil {
		return "stopped"
	}
	if hot, left := d.reader.Mode(); hot {
		return fmt.Sprintf("hot, %s left", left.Round(time.Second))
	}
	return "idle"
}

// busError maps the engine's errors onto the bus's named errors.
func busError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jails.ErrNoSuchJail):
		return fmt.Errorf("%w: %v", bus.ErrNoSuchJail, err)
	case errors.Is(err, jails.ErrInvalidAddress), errors.Is(err, jails.ErrIgnored):
		var r *jails.Refusal
		if errors.As(err, &r) {
			// The engine's message stands alone ("0.0.0.0/0 contains 127.0.0.0/8, which jail sshd
			// ignores"): it is the bus error's message as it is.
			return refusal{r}
		}
		return fmt.Errorf("%w: %v", bus.ErrInvalidAddress, err)
	case errors.Is(err, jails.ErrNotBanned):
		return fmt.Errorf("%w: %v", bus.ErrNotBanned, err)
	}
	return err
}

// banInfo is a ban as the bus shows it.
func banInfo(b jails.Ban) bus.BanInfo {
	return bus.BanInfo{
		Address:      prefixString(b.Prefix),
		BannedAtUsec: uint64(b.BannedAt.UnixMicro()),
		ExpiresUsec:  uint64(b.Expires.UnixMicro()),
		BanCount:     uint32(b.Count),
	}
}

// refusal is a manual ban the engine refused, as the bus's InvalidAddress with the engine's message.
type refusal struct{ r *jails.Refusal }

func (e refusal) Error() string        { return e.r.Msg }
func (e refusal) Is(target error) bool { return target == bus.ErrInvalidAddress }

// engineNotice logs what the engine tells once, such as an IPv6 prefix it bans address by address
// because the prefix holds an address the jail ignores.
func (d *Daemon) engineNotice(jail, msg string) {
	d.log.Event("", sdjournal.PriNotice, map[string]string{events.FieldJail: jail}, "jail %s: %s", jail, msg)
}

// failureLog keeps the per-failure debug entries from flooding the journal: failures read from a
// backlog (older than a minute) are counted but not logged one by one, and live ones are logged at
// most failureLogRate a second (with a burst), so that journald's rate limit for gaolerd is never
// spent on debug entries while ban entries wait. What was left out is summed up once a second.
type failureLog struct {
	tokens     float64
	last       time.Time
	suppressed int
}

const (
	failureLogRate  = 50
	failureLogBurst = 200
	backlogAge      = time.Minute
)

func (l *failureLog) allow(now, at time.Time) bool {
	if now.Sub(at) > backlogAge {
		l.suppressed++
		return false
	}
	l.tokens += now.Sub(l.last).Seconds() * failureLogRate
	if l.tokens > failureLogBurst {
		l.tokens = failureLogBurst
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false
	}
	l.tokens--
	return true
}

// take returns how many failures were left out since the last call.
func (l *failureLog) take() int {
	n := l.suppressed
	l.suppressed = 0
	return n
}
