package fleet

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

// pluginHost is the daemon's plugin host as Start sees it.
type pluginHost struct {
	cfg    *config.Config
	handle func(events.Event)
	wg     sync.WaitGroup
}

func (h *pluginHost) Subscribe(_ int, handle func(events.Event)) { h.handle = handle }
func (h *pluginHost) Config() *config.Config                     { return h.cfg }
func (h *pluginHost) Go(fn func()) {
	h.wg.Add(1)
	go func() { defer h.wg.Done(); fn() }()
}

func TestStartAsPlugin(t *testing.T) {
	s := startServer(t, 0, nil)
	peer := startHost(t, "h2", []string{s.ClientURL()}, "", nil)
	cfg := &config.Config{Daemon: config.Daemon{StateDirectory: t.TempDir()},
		Fleet: config.Fleet{Servers: []string{s.ClientURL()}, Host: "h1", MaxBanTime: time.Hour, Replicas: 1, PeerRate: 100}}
	h := &pluginHost{cfg: cfg}
	d := newFakeDaemon()
	ctx, cancel := context.WithCancel(context.Background())
	f, err := Start(ctx, h, d, &testLog{})
	if err != nil {
		t.Fatal(err)
	}
	d.localBan(nil, "sshd", "192.0.2.77/32", time.Hour)
	h.handle(d.Bans()[0])
	waitFor(t, 10*time.Second, "the peer applies the plugin's ban", func() bool { _, ok := peer.d.banned("sshd.192.0.2.77"); return ok })
	if st := f.Status(); !st.Connected || st.Published != 1 {
		t.Fatalf("status %+v", st)
	}
	cancel()
	h.wg.Wait()

	cfg.Fleet.Servers = nil
	if _, err := Start(context.Background(), h, d, &testLog{}); !errors.Is(err, ErrDisabled) {
		t.Fatalf("Start without servers: %v, want ErrDisabled", err)
	}
}
