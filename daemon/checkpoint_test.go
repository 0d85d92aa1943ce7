package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/jails"
)

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadCheckpoint(dir); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("LoadCheckpoint on an empty directory = %v, want ErrNoCheckpoint", err)
	}
	cp := Checkpoint{Cursor: "s=abc;i=1", RealtimeUsec: 1795600000000000, SavedAt: time.Unix(1795600000, 0).UTC(),
		Engine: jails.State{Version: jails.StateVersion}}
	if err := cp.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cursor != cp.Cursor || got.RealtimeUsec != cp.RealtimeUsec || !got.SavedAt.Equal(cp.SavedAt) {
		t.Errorf("LoadCheckpoint = %+v, want %+v", got, cp)
	}
	// Saving leaves no temporary files behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state directory holds %d files after Save, want 1 (state.json)", len(entries))
	}
}

// TestCheckpointUnreadable: a checkpoint that cannot be parsed is moved aside and reported, so the
// daemon starts fresh instead of failing on every start.
func TestCheckpointUnreadable(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":     "{not json",
		"truncated":   `{"version":1,"cursor":"s=`,
		"new version": `{"version":99}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, checkpointFile), []byte(content), 0o600)
			_, err := LoadCheckpoint(dir)
			if err == nil || errors.Is(err, ErrNoCheckpoint) {
				t.Fatalf("LoadCheckpoint = %v, want an error saying it is unreadable", err)
			}
			if !strings.Contains(err.Error(), "starting fresh") {
				t.Errorf("error %q does not say what happens next", err)
			}
			if _, err := os.Stat(filepath.Join(dir, checkpointFile)); !os.IsNotExist(err) {
				t.Errorf("the unreadable checkpoint is still in place")
			}
			aside, _ := filepath.Glob(filepath.Join(dir, checkpointFile+".broken-*"))
			if len(aside) != 1 {
				t.Fatalf("moved-aside files: %v, want 1", aside)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != content {
				t.Errorf("the moved-aside file lost its content")
			}
			if _, err := LoadCheckpoint(dir); !errors.Is(err, ErrNoCheckpoint) {
				t.Errorf("second LoadCheckpoint = %v, want ErrNoCheckpoint (a fresh start)", err)
			}
		})
	}
}

func TestMinuteCounter(t *testing.T) {
	var c minuteCounter
	t0 := time.Unix(1795600000, 0)
	for i := 0; i < 90; i++ {
		c.add(t0.Add(time.Duration(i) * time.Minute))
	}
	if got := c.lastHour(t0.Add(89 * time.Minute)); got != 60 {
		t.Errorf("lastHour = %d, want 60", got)
	}
	if got := c.lastHour(t0.Add(200 * time.Minute)); got != 0 {
		t.Errorf("lastHour long after = %d, want 0", got)
	}
}

func TestFailureLog(t *testing.T) {
	var l failureLog
	now := time.Unix(1795600000, 0)
	if l.allow(now, now.Add(-2*time.Minute)) {
		t.Errorf("a failure from a backlog was logged")
	}
	logged := 0
	for i := 0; i < 1000; i++ {
		if l.allow(now, now) {
			logged++
		}
	}
	if logged > failureLogBurst {
		t.Errorf("%d failures logged at once, want at most the burst %d", logged, failureLogBurst)
	}
	if got := l.take(); got != 1001-logged {
		t.Errorf("take = %d, want %d", got, 1001-logged)
	}
	if !l.allow(now.Add(time.Second), now.Add(time.Second)) {
		t.Errorf("no failure logged a second later")
	}
}

func TestCheckpointJSONIsEncodingJSON(t *testing.T) {
	cp := Checkpoint{Version: checkpointVersion, Cursor: "s=6c0f;i=1a2b;b=0f;m=12;t=5f;x=99", RealtimeUsec: 1795600000123456,
		SavedAt: time.Unix(1795600000, 123).UTC(), Engine: jails.State{Version: jails.StateVersion,
			Jails: []jails.JailState{{Name: "sshd", TotalFailed: 3}}}}
	// Enough history to be written in several chunks.
	for i := 0; i < 5000; i++ {
		cp.Engine.History = append(cp.Engine.History, jails.HistoryRec{Jail: "sshd",
			Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32), Count: i%3 + 1,
			Last: time.Unix(1795600000+int64(i), 0).UTC()})
	}
	want, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := cp.writeJSON(&got); err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("writeJSON:\n got %.300s\nwant %.300s", got.String(), want)
	}
}
