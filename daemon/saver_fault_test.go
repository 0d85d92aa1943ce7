package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
	"github.com/gaoler/gaoler/jails"
)

// smallTmpfs mounts a tmpfs of size bytes on a fresh directory for the test.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file into dir until the file system is full, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
	}
}

// TestSaverOnFullOrReadOnlyDirectory: with the state directory full, then read-only, each kind of
// error is logged once, later failures only in a summary every summaryEvery, and the checkpoint is
// written again by itself once the directory takes it, which is logged once.
func TestSaverOnFullOrReadOnlyDirectory(t *testing.T) {
	dir := smallTmpfs(t, "256k")
	var mu sync.Mutex
	var errs, infos []string
	s := newSaver(dir, func(err error) { mu.Lock(); errs = append(errs, err.Error()); mu.Unlock() },
		func(msg string) { mu.Lock(); infos = append(infos, msg); mu.Unlock() })
	defer s.close()
	clock := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	s.mu.Lock()
	s.now = func() time.Time { return clock }
	s.mu.Unlock()
	n := uint64(0)
	save := func() error {
		n++
		cp := &Checkpoint{Cursor: "c", RealtimeUsec: n, Engine: jails.State{Version: jails.StateVersion}}
		return s.wait(s.put(cp))
	}
	logged := func() (e, i []string) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...), append([]string(nil), infos...)
	}
	if err := save(); err != nil {
		t.Fatal(err)
	}

	filler := fill(t, dir)
	for range 30 { // a checkpoint a second for half a minute
		if err := save(); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("save on a full directory: %v, want ENOSPC", err)
		}
		clock = clock.Add(time.Second)
	}
	if e, _ := logged(); len(e) != 1 || !strings.Contains(e[0], "no space left") {
		t.Fatalf("logged %q, want the first ENOSPC once", e)
	}
	clock = clock.Add(summaryEvery)
	save()
	if e, _ := logged(); len(e) != 2 || !strings.Contains(e[1], "31 writes failed") {
		t.Fatalf("logged %q, want one summary of 31 failed writes", e)
	}
	os.Remove(filler)
	if err := save(); err != nil {
		t.Fatalf("save once space is back: %v", err)
	}
	if _, i := logged(); len(i) != 1 || !strings.Contains(i[0], "written again after 31 failed writes") {
		t.Fatalf("logged %q, want one line saying the checkpoint is written again", i)
	}
	if cp, err := LoadCheckpoint(dir); err != nil || cp.RealtimeUsec != n {
		t.Fatalf("checkpoint on disk: %+v, %v; want number %d", cp, err, n)
	}

	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := save(); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("save on a read-only directory: %v, want EROFS", err)
		}
	}
	if e, _ := logged(); len(e) != 3 || !strings.Contains(e[2], "read-only") {
		t.Fatalf("logged %q, want the first EROFS once more", e)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatal(err)
	}
	if err := save(); err != nil {
		t.Fatalf("save after remounting read-write: %v", err)
	}
	if e, i := logged(); len(e) != 3 || len(i) != 2 {
		t.Errorf("logged %q and %q, want nothing more than the line saying it is written again", e, i)
	}
	if cp, err := LoadCheckpoint(dir); err != nil || cp.RealtimeUsec != n {
		t.Errorf("checkpoint on disk: %+v, %v; want number %d", cp, err, n)
	}
}
