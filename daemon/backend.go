package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/metrics"
)

// backend is the daemon as the bus sees it: every call runs on the main loop.
type backend struct{ d *Daemon }

func (b backend) Version() string { return b.d.opts.Version }

func (b backend) Reader() string {
	mode := "stopping"
	// do fails only when the daemon is stopping, which mode already says.
	_ = b.d.do(func() { mode = b.d.readerMode() })
	return mode
}

func (b backend) JailNames() []string {
	var names []string
	// do fails only when the daemon is stopping: no jails to show then (the property has no error).
	_ = b.d.do(func() {
		for _, j := range b.d.active {
			names = append(names, j.name)
		}
	})
	return names
}

func (b backend) Jail(name string) (bus.JailInfo, error) {
	var info bus.JailInfo
	var err error
	if derr := b.d.do(func() {
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
	}); derr != nil {
		return bus.JailInfo{}, derr
	}
	return info, err
}

// manualOrigin is the origin of UnbanAll, and of Ban and Unban when the bus does not say who called:
// the bus policy lets only root call them.
var manualOrigin = events.Origin{Kind: events.OriginManual, UID: 0}

func (b backend) Ban(jail, address string, seconds uint64) (bus.BanInfo, error) {
	return b.BanBy(jail, address, seconds, manualOrigin.UID)
}

// BanBy is Ban on behalf of the bus caller uid, which the ban's origin keeps (bus.ManualBackend).
func (b backend) BanBy(jail, address string, seconds uint64, uid uint32) (bus.BanInfo, error) {
	var ban jails.Ban
	var err error
	if derr := b.d.do(func() {
		ban, err = b.d.engine.Ban(jail, address, time.Duration(seconds)*time.Second, events.Origin{Kind: events.OriginManual, UID: uid})
		err = b.d.afterManual(err)
	}); derr != nil {
		return bus.BanInfo{}, derr
	}
	if err != nil {
		return bus.BanInfo{}, busError(err)
	}
	return banInfo(ban), nil
}

func (b backend) Unban(jail, address string) (bus.BanInfo, error) {
	return b.UnbanBy(jail, address, manualOrigin.UID)
}

// UnbanBy is Unban on behalf of the bus caller uid (bus.ManualBackend). It returns the ban lifted.
func (b backend) UnbanBy(jail, address string, uid uint32) (bus.BanInfo, error) {
	var ban jails.Ban
	var err error
	if derr := b.d.do(func() {
		ban, err = b.d.engine.Unban(jail, address, events.Origin{Kind: events.OriginManual, UID: uid})
		err = b.d.afterManual(err)
	}); derr != nil {
		return bus.BanInfo{}, derr
	}
	if err != nil {
		return bus.BanInfo{}, busError(err)
	}
	return banInfo(ban), nil
}

func (b backend) UnbanAll(jail string) (uint32, error) {
	var n int
	var err error
	if derr := b.d.do(func() {
		n, err = b.d.engine.UnbanAll(jail, manualOrigin)
		err = b.d.afterManual(err)
	}); derr != nil {
		return 0, derr
	}
	return uint32(n), busError(err)
}

func (b backend) ListBans(jail string) ([]bus.BanInfo, error) {
	return jailBans(b.d, jail, banInfo)
}

// jailBans returns each running ban of jail as show makes it, sorted, or ErrNoSuchJail (see
// takeBans).
func jailBans[T any](d *Daemon, jail string, show func(jails.Ban) T) ([]T, error) {
	bans, release, err := d.takeBans(jail)
	if err != nil {
		return nil, err
	}
	defer release()
	out := make([]T, 0, bans.Len())
	for ban := range bans.All() {
		out = append(out, show(*ban))
	}
	return out, nil
}

// takeBans returns the running bans of an enabled jail for a bus reply, or ErrNoSuchJail. They are
// taken on the main loop in constant time (jails.BanList) and read off the lock, by one caller at a
// time, until it calls release: a flood of ListBans of 100,000 bans from many clients costs the
// journal reader nothing under the lock and at most one core's share of building replies, while the
// callers wait their turn.
func (d *Daemon) takeBans(jail string) (bans jails.BanList, release func(), err error) {
	if derr := d.do(func() {
		if d.jailConfig(jail) == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		bans = d.engine.BanList(jail)
	}); derr != nil {
		return jails.BanList{}, nil, derr
	}
	if err != nil {
		return jails.BanList{}, nil, err
	}
	select {
	case d.lists <- struct{}{}:
	case <-d.ctx.Done():
		return jails.BanList{}, nil, ErrStopping
	}
	return bans, func() { <-d.lists }, nil
}

var _ bus.PageBackend = backend{}

// BanPage answers the bus's Jail.ListBansPage (bus.PageBackend): a page of the jail's bans after
// the address or prefix after, found by a binary search in the list taken as takeBans takes it.
func (b backend) BanPage(jail, after string, limit int) ([]bus.BanInfo, bool, error) {
	var from netip.Prefix
	if after != "" {
		var err error
		if strings.Contains(after, "/") {
			from, err = netip.ParsePrefix(after)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(after)
			from = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: after %q is not an address or prefix ListBans lists", bus.ErrInvalidAddress, after)
		}
	}
	bans, release, err := b.d.takeBans(jail)
	if err != nil {
		return nil, false, err
	}
	defer release()
	page, more := bans.Page(from, limit)
	out := make([]bus.BanInfo, 0, len(page))
	for _, ban := range page {
		out = append(out, banInfo(*ban))
	}
	return out, more, nil
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
// checkpoint (written before do returns, off the lock: see saveForReply), so a restart (even after SIGKILL) neither forgets a manual ban nor re-bans an address the
// admin forgave. It returns err, or the firewall's error when the kernel refused the change (it is
// recorded, and tried again within a second).
func (d *Daemon) afterManual(err error) error {
	if err != nil {
		return err
	}
	ferr := d.commit()
	d.saveForReply()
	if ferr != nil {
		return fmt.Errorf("recorded, but not in the kernel yet (retrying): firewall: %w", ferr)
	}
	return nil
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
		if left == 0 {
			return "hot (every failure bans)"
		}
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
		Address:      events.PrefixString(b.Prefix),
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
