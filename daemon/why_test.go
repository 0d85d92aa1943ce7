package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/journal"
)

// runFor runs the whole daemon on its seams (a fake firewall and journal, no bus) with a plugin that
// hands the test its Host, and returns the Host, the journal's batches and a stop function that waits
// for Run to return (the checkpoint is written at the stop).
func runFor(t *testing.T, cfgPath string, fw *fakeFirewall) (*Host, chan<- []journal.Entry, *recorder, func()) {
	t.Helper()
	jr := &fakeJournal{batches: make(chan []journal.Entry, 4), opened: make(chan journal.Options, 4)}
	var log syncBuffer
	hosts := make(chan *Host, 1)
	heard := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Log: NewTextLogger(&log), Firewall: fw, OpenJournal: jr.open,
			Bus:    func() (*dbus.Conn, error) { return nil, errors.New("no bus in this test") },
			Notify: func(string) {},
			Plugins: []Plugin{{Name: "test", Start: func(ctx context.Context, h *Host) error {
				h.Subscribe(100, heard.handle)
				hosts <- h
				return nil
			}}}})
	}()
	var h *Host
	select {
	case h = <-hosts:
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	<-jr.opened
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v\n%s", err, log.String())
		}
	}
	t.Cleanup(stop)
	return h, jr.batches, heard, stop
}

// waitHeard waits until the recorder has heard an event that ok accepts.
func waitHeard(t *testing.T, r *recorder, what string, ok func(events.Event) bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		for _, ev := range r.got() {
			if ok(ev) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never heard %s: %+v", what, r.got())
}

// TestWhyAfterRestart: bans that ended (one lifted by an admin, one expired) are still explained by
// Why after the daemon restarts, with their rule, origin, entries, end and reason: they are part of
// the checkpointed state, not of the daemon's memory.
func TestWhyAfterRestart(t *testing.T) {
	dir := t.TempDir()
	cfgPath := dir + "/gaoler.toml"
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("[daemon]\nstate_directory = %q\n%s", dir+"/state", sshdJail)), 0o600); err != nil {
		t.Fatal(err)
	}
	const lifted, expired = "192.0.2.64", "198.51.100.64"
	fw := newFakeFirewall()
	h, batches, heard, stop := runFor(t, cfgPath, fw)
	batches <- failures(lifted, 3)
	waitHeard(t, heard, "the ban of "+lifted, func(ev events.Event) bool { return ev.Kind == events.Ban && ev.Address() == lifted })
	if _, err := h.Unban("sshd", netip.MustParsePrefix(lifted+"/32"), events.Origin{Kind: events.OriginManual, UID: 0}); err != nil {
		t.Fatal(err)
	}
	peer := events.Origin{Kind: events.OriginPeer, Peer: "h2"}
	if _, err := h.Ban(BanRequest{Jail: "sshd", Prefix: netip.MustParsePrefix(expired + "/32"),
		Expires: time.Now().Add(time.Second), Origin: peer}); err != nil {
		t.Fatal(err)
	}
	waitHeard(t, heard, "the expiry of "+expired, func(ev events.Event) bool {
		return ev.Kind == events.Unban && ev.Address() == expired && ev.Reason == "expired"
	})
	before, err := backend{h.d}.Why(lifted, "")
	if err != nil {
		t.Fatal(err)
	}
	stop()

	h, _, _, _ = runFor(t, cfgPath, fw)
	r, err := backend{h.d}.Why(lifted, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bans) != 1 {
		t.Fatalf("after the restart, Why(%s) = %+v, want the ban that was lifted", lifted, r)
	}
	b := r.Bans[0]
	if b.Active || b.EndReason != "manual" || b.Ended.IsZero() || b.Jail != "sshd" || b.Origin != "filter" || b.Rule == "" ||
		len(b.Entries) != 3 || !strings.Contains(b.Entries[2].Message, "from "+lifted+" port") {
		t.Errorf("after the restart, the lifted ban: %+v", b)
	}
	if j1, j2 := mustJSON(t, before.Bans), mustJSON(t, r.Bans); j1 != j2 {
		t.Errorf("Why before the restart\n%s\nafter\n%s", j1, j2)
	}
	r, err = backend{h.d}.Why(expired, "sshd")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bans) != 1 || r.Bans[0].Active || r.Bans[0].EndReason != "expired" || r.Bans[0].Origin != "peer" ||
		r.Bans[0].Peer != "h2" || !r.Bans[0].Ended.Equal(r.Bans[0].Expires) {
		t.Errorf("after the restart, Why(%s) = %+v, want the peer's ban that expired", expired, r)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
