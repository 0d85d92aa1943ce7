package actions

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

// fakeHost is a daemon's plugin host: a real hub, a configuration the test swaps, goroutines it
// waits for.
type fakeHost struct {
	hub *events.Hub
	cfg atomic.Pointer[config.Config]
	wg  sync.WaitGroup
}

func (h *fakeHost) Subscribe(queue int, handle func(events.Event)) {
	h.hub.Subscribe("actions", queue, handle)
}
func (h *fakeHost) Config() *config.Config { return h.cfg.Load() }
func (h *fakeHost) Go(fn func()) {
	h.wg.Add(1)
	go func() { defer h.wg.Done(); fn() }()
}

func TestStartFollowsReloads(t *testing.T) {
	parse := func(jailActions string) *config.Config {
		cfg, err := config.Parse("gaoler.toml", `
[jail.sshd]
enabled = true
actions = `+jailActions+`
[action.hook]
type = "exec"
command = ["/bin/true", "{address}"]
`)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	h := &fakeHost{hub: events.NewHub()}
	h.cfg.Store(parse(`["hook"]`))
	log := &recordingLog{}
	ctx, cancel := context.WithCancel(context.Background())
	rep := &Reporter{Log: log}
	if err := Start(ctx, h, rep); err != nil {
		t.Fatal(err)
	}
	h.hub.Publish(banEvent("192.0.2.7"))
	sent := log.wait(t, events.MsgActionSent, 1)
	if c := rep.Counts(); len(c) != 1 || c[0] != (Count{Name: "hook", Sent: 1}) {
		t.Errorf("counts after one run: %+v", c)
	}
	if sent[0].fields[events.FieldAction] != "hook" || sent[0].fields[events.FieldAddress] != "192.0.2.7" {
		t.Fatalf("entry %+v", sent[0])
	}
	h.cfg.Store(parse(`[]`))
	h.hub.Publish(banEvent("192.0.2.8"))
	h.hub.Close()
	cancel()
	h.wg.Wait()
	for _, e := range log.entries {
		if strings.Contains(e.msg, "192.0.2.8") {
			t.Fatalf("the action ran after the reload took it out of the jail: %+v", e)
		}
	}
}
