package daemon

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gaoler/gaoler/jails"
)

func TestSaverWritesNewestAndWaits(t *testing.T) {
	dir := t.TempDir()
	s := newSaver(dir, func(err error) { t.Errorf("unexpected write error: %v", err) }, func(string) {})
	var last uint64
	for i := 1; i <= 50; i++ {
		last = s.put(&Checkpoint{Cursor: "c", RealtimeUsec: uint64(i), Engine: jails.State{Version: jails.StateVersion}})
	}
	if err := s.wait(last); err != nil {
		t.Fatal(err)
	}
	cp, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cp.RealtimeUsec != 50 {
		t.Errorf("checkpoint on disk is number %d, want the newest, 50", cp.RealtimeUsec)
	}
	// What is handed over before close is written by close.
	s.put(&Checkpoint{Cursor: "c", RealtimeUsec: 51, Engine: jails.State{Version: jails.StateVersion}})
	s.close()
	if cp, err := LoadCheckpoint(dir); err != nil || cp.RealtimeUsec != 51 {
		t.Errorf("after close: %+v, %v; want number 51", cp, err)
	}
	if s.takeFailed() {
		t.Error("takeFailed after good writes")
	}
}

func TestSaverReportsFailure(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logged []error
	s := newSaver(notDir, func(err error) { mu.Lock(); logged = append(logged, err); mu.Unlock() }, func(string) {})
	defer s.close()
	if err := s.wait(s.put(&Checkpoint{Engine: jails.State{Version: jails.StateVersion}})); err == nil {
		t.Fatal("wait: no error for a state directory that is a file")
	}
	mu.Lock()
	n := len(logged)
	mu.Unlock()
	if n != 1 {
		t.Errorf("%d errors logged, want 1", n)
	}
	if !s.takeFailed() || s.takeFailed() {
		t.Error("takeFailed: want true once, then false")
	}
}

// TestSaverSavedAt: the time of the checkpoint on disk is the loaded one until a write succeeds, then
// the written one's; a failed write leaves it behind.
func TestSaverSavedAt(t *testing.T) {
	dir := t.TempDir()
	s := newSaver(dir, func(error) {}, func(string) {})
	defer s.close()
	if !s.saved().IsZero() {
		t.Fatal("a new saver knows of a checkpoint")
	}
	loaded := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s.loaded(loaded)
	if got := s.saved(); !got.Equal(loaded) {
		t.Fatalf("saved() = %v, want the loaded checkpoint's %v", got, loaded)
	}
	taken := loaded.Add(time.Hour)
	if err := s.wait(s.put(&Checkpoint{Cursor: "c", SavedAt: taken, Engine: jails.State{Version: jails.StateVersion}})); err != nil {
		t.Fatal(err)
	}
	if got := s.saved(); !got.Equal(taken) {
		t.Fatalf("after a write, saved() = %v, want %v", got, taken)
	}
	os.RemoveAll(dir) // the next write fails
	s.wait(s.put(&Checkpoint{Cursor: "c", SavedAt: taken.Add(time.Hour), Engine: jails.State{Version: jails.StateVersion}}))
	if got := s.saved(); !got.Equal(taken) {
		t.Fatalf("after a failed write, saved() = %v, want it left at %v", got, taken)
	}
}
