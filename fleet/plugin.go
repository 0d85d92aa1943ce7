package fleet

import (
	"context"

	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

// Host is the part of gaolerd's plugin host (daemon.Host) that the fleet needs.
type Host interface {
	// Subscribe hands handle every event the daemon announces, on a goroutine of its own.
	Subscribe(queue int, handle func(events.Event))
	// Config is the running configuration.
	Config() *config.Config
	// Go runs fn on a goroutine the daemon waits for at stop.
	Go(fn func())
}

// hostQueue is the daemon-side queue of the fleet's subscription. Handle only puts an event in the
// outbox, so it seldom holds more than one; an event it drops is found again by the reconciliation
// at the next connection.
const hostQueue = 4096

// Start runs the fleet of the daemon's configuration as a plugin until ctx is done: it subscribes to
// the daemon's events and connects to the cluster on a goroutine of its own; the outbox is saved at
// stop. It returns ErrDisabled when the configuration has no [fleet] servers. The [fleet] table is
// read once: a reload that changes it takes effect at the next start.
func Start(ctx context.Context, h Host, d Daemon, log Logger) (*Fleet, error) {
	cfg := h.Config()
	f, err := New(cfg.Fleet, d, Options{StateDirectory: cfg.Daemon.StateDirectory, Log: log})
	if err != nil {
		return nil, err
	}
	h.Subscribe(hostQueue, f.Handle)
	h.Go(func() {
		if err := f.Run(ctx); err != nil {
			log.Event("", sdjournal.PriErr, nil, "%v", err)
		}
	})
	return f, nil
}
