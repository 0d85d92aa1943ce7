package daemon

import (
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/journal"
)

// reload applies a new configuration without losing bans, windows or history. A configuration that
// does not load is logged with its file and line, and the running one stays.
func (d *Daemon) reload() error {
	d.notify(sddaemon.SdNotifyReloading + "\n" + sddaemon.SdNotifyMonotonicUsec())
	defer d.notify(sddaemon.SdNotifyReady)
	cfg, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		d.logConfigError(err)
		return &ConfigError{err}
	}
	if cfg.Daemon != d.cfg.Daemon || cfg.Journal != d.cfg.Journal {
		d.log.Warnf("reload: [daemon] and [journal] settings take effect at the next start; keeping the running ones")
		cfg.Daemon, cfg.Journal = d.cfg.Daemon, d.cfg.Journal
	}
	for _, w := range cfg.Warnings {
		d.log.Warnf("%s", w)
	}
	if err := d.fw.Setup(firewallRules(cfg)); err != nil {
		d.log.Errorf("reload: firewall: %v; keeping the running configuration", err)
		return err
	}
	oldTerms := d.matchTerms
	d.configureJails(cfg)
	d.cfg = cfg
	d.running.Store(cfg)
	d.commit() // a failed Flush is logged there, and tried again at the next commit
	if d.matchTerms != oldTerms {
		d.stopReader()
		if err := d.startReader(journal.Position{Cursor: d.cursor, RealtimeUsec: d.realtimeUsec}); err != nil {
			d.log.Errorf("%v", err) // "journal: ..."
			d.readerRetry = d.now().Add(time.Second)
		}
	}
	d.saveNow()
	if d.bus != nil {
		d.bus.JailsChanged()
	}
	d.log.Event(events.MsgReloaded, sdjournal.PriInfo, nil, "Reloaded: %s", d.summary())
	return nil
}
