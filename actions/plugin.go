package actions

import (
	"context"
	"sync"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

// Host is what the actions need of the daemon; the daemon's plugin host implements it.
type Host interface {
	// Subscribe hands handle every event the daemon announces, on a goroutine of its own.
	Subscribe(queue int, handle func(events.Event))
	// Config is the running configuration; a reload replaces it.
	Config() *config.Config
	// Go runs fn on a goroutine the daemon waits for at stop.
	Go(fn func())
}

// hostQueue is the daemon-side queue of the actions' subscription. Handle only hands events on to
// the actions' own queues, so it seldom holds more than one.
const hostQueue = 1024

// Start runs the actions of the daemon's configuration until ctx is done: it subscribes to the
// daemon's events, follows reloads (a changed configuration is seen with the next event), and at stop
// lets the queued runs finish for a few seconds and sends the digests still waiting. Outcomes go to
// rep, which logs and counts them.
func Start(ctx context.Context, h Host, rep *Reporter) error {
	host := HostName()
	env := Env{Host: host, Redact: HostIdentity(host), Reporter: rep}
	r := &running{h: h, env: env, set: NewSet(env.Reporter)}
	r.configure()
	h.Subscribe(hostQueue, r.handle)
	h.Go(func() {
		<-ctx.Done()
		r.set.Close()
	})
	return nil
}

// running is the actions of a daemon: the Set and the configuration it was built from.
type running struct {
	h   Host
	env Env
	set *Set

	mu  sync.Mutex
	cfg *config.Config
}

func (r *running) configure() {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := r.h.Config()
	if cfg == nil || cfg == r.cfg {
		return
	}
	r.cfg = cfg
	r.set.Configure(cfg, r.env)
}

func (r *running) handle(ev events.Event) {
	r.configure()
	r.set.Handle(ev)
}
