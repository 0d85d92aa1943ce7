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
)

// trustSink receives the engine's trust decisions (holding the daemon's mutex) and queues their
// journal entries, which unlock writes after letting go of mu.
type trustSink struct{ d *Daemon }

// trustFields are the structured fields of a trust entry.
func trustFields(t jails.Trust) map[string]string {
	f := map[string]string{
		events.FieldJail: t.Jail, events.FieldAddress: t.Addr.String(),
		events.FieldExpires: strconv.FormatInt(t.Until.UnixMicro(), 10),
		events.FieldMethod:  t.Method,
	}
	if t.User != "" {
		f[events.FieldUser] = t.User
	}
	return f
}

// TrustReason describes how a trust was earned, for people: "login of admin by publickey",
// "a logind session of admin", "gaoler trust by uid 0".
func TrustReason(t jails.Trust) string {
	switch t.Method {
	case jails.MethodManual:
		return fmt.Sprintf("gaoler trust by uid %d", t.UID)
	case jails.MethodLogind:
		return fmt.Sprintf("a logind session of %s", t.User)
	}
	return fmt.Sprintf("login of %s by %s", t.User, t.Method)
}

func (s trustSink) Trusted(t jails.Trust, extended bool) {
	d := s.d
	verb, pri := "Trusted", sdjournal.PriNotice
	if extended {
		verb, pri = "Trust extended for", sdjournal.PriInfo
	}
	until := t.Until.Local().Format("2006-01-02 15:04:05")
	reason := TrustReason(t)
	d.notes = append(d.notes, func() {
		d.log.Event(events.MsgTrusted, pri, trustFields(t), "%s %s in jail %s until %s (%s at %s)",
			verb, t.Addr, t.Jail, until, reason, t.At.Local().Format("2006-01-02 15:04:05"))
	})
}

// untrustedWhy is what each reason of Untrusted means.
var untrustedWhy = map[string]string{
	"expired": "its time is over",
	"manual":  "gaoler untrust",
	"banned":  "a manual ban overrides the trust",
	"config":  "trust_after_login or trust_methods changed",
	"full":    "the jail trusts max_trusted addresses, and this trust was the one ending soonest",
}

func (s trustSink) Untrusted(t jails.Trust, reason string) {
	d := s.d
	fields := trustFields(t)
	fields[events.FieldReason] = reason
	why := untrustedWhy[reason]
	d.notes = append(d.notes, func() {
		d.log.Event(events.MsgUntrusted, sdjournal.PriNotice, fields, "Trust of %s in jail %s ended: %s", t.Addr, t.Jail, why)
	})
}

// The daemon's side of the bus's Trust interface (bus.TrustBackend). Every call runs on the main loop;
// a change is committed and checkpointed before the call returns, as a manual ban is.

func (b backend) Trust(jail, address string, seconds uint64, uid uint32) error {
	var err error
	if derr := b.d.do(func() {
		if b.d.jailConfig(jail) == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		_, err = b.d.engine.Trust(jail, address, time.Duration(seconds)*time.Second, uid)
		err = b.d.afterManual(err)
	}); derr != nil {
		return derr
	}
	return trustError(err)
}

func (b backend) Untrust(jail, address string) error {
	var err error
	if derr := b.d.do(func() {
		if b.d.jailConfig(jail) == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		_, err = b.d.engine.Untrust(jail, address)
		err = b.d.afterManual(err)
	}); derr != nil {
		return derr
	}
	return trustError(err)
}

func (b backend) ListTrusted(jail string) ([]bus.TrustInfo, error) {
	var out []bus.TrustInfo
	var err error
	if derr := b.d.do(func() {
		if b.d.jailConfig(jail) == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		for _, t := range b.d.engine.Trusted(jail) {
			out = append(out, trustInfo(t))
		}
	}); derr != nil {
		return nil, derr
	}
	return out, err
}

func (b backend) TrustOf(jail, address string) ([]bus.TrustInfo, error) {
	a, perr := netip.ParseAddr(address)
	if perr != nil {
		return nil, fmt.Errorf("%w: %q", bus.ErrInvalidAddress, address)
	}
	var out []bus.TrustInfo
	var err error
	if derr := b.d.do(func() {
		if b.d.jailConfig(jail) == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		if t, ok := b.d.engine.TrustOf(jail, a); ok {
			out = append(out, trustInfo(t))
		}
	}); derr != nil {
		return nil, derr
	}
	return out, err
}

func (b backend) TrustSettings(jail string) (uint64, error) {
	var after uint64
	var err error
	if derr := b.d.do(func() {
		cfg := b.d.jailConfig(jail)
		if cfg == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		after = uint64(cfg.Settings.Trust.After / time.Second)
	}); derr != nil {
		return 0, derr
	}
	return after, err
}

func trustInfo(t jails.Trust) bus.TrustInfo {
	return bus.TrustInfo{
		Address: t.Addr.String(), UntilUsec: uint64(t.Until.UnixMicro()), AtUsec: uint64(t.At.UnixMicro()),
		User: t.User, Method: t.Method, Logins: uint32(t.Logins),
	}
}

// trustError maps the engine's trust errors onto the bus's named errors.
func trustError(err error) error {
	if errors.Is(err, jails.ErrNotTrusted) {
		return fmt.Errorf("%w: %v", bus.ErrNotTrusted, err)
	}
	return busError(err)
}

var _ bus.TrustBackend = backend{}

// Login hands a login that no journal entry carries (a remote session systemd-logind reports, see
// package logind) to the engine, as a login seen by no jail in particular (LoginEvent.Service routes
// it): the jails that take it trust its address. What it gives is committed and checkpointed before
// Login returns, since a restart would not see the login again. It fails with ErrStopping once the
// daemon is stopping.
func (h *Host) Login(l jails.LoginEvent) ([]jails.Trust, error) {
	var trusts []jails.Trust
	err := h.d.do(func() {
		if trusts = h.d.engine.Login("", l); len(trusts) > 0 {
			h.d.commit() // a failed Flush is logged there, and tried again at the next commit
			h.d.saveForReply()
		}
	})
	return trusts, err
}

// whyTrust is the jail's trust of a for `gaoler why` (bus.WhyNot.Trusted), or nil; the daemon's Why
// answer calls it for each jail that does not ban the address. The caller holds mu.
func (d *Daemon) whyTrust(jail string, a netip.Addr) *bus.WhyTrust {
	t, ok := d.engine.TrustOf(jail, a)
	if !ok {
		return nil
	}
	return &bus.WhyTrust{Until: t.Until, At: t.At, User: t.User, Method: t.Method, Logins: t.Logins}
}
