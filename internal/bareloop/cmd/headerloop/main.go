// Command headerloop is the reference of the hot-reader benchmarks: the cheapest way a Go program can
// notice new journal entries within a millisecond. It maps the header of the journal file journald
// is writing (system.journal of this machine, in /run/log/journal or /var/log/journal, or FILE) and
// reads its entry count (n_entries, offset 152 in systemd's JOURNAL_FILE_FORMAT) every millisecond
// from a time.Ticker, for DURATION, then prints how many times the count moved.
//
//	headerloop DURATION [FILE]
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: headerloop DURATION [FILE]")
		os.Exit(2)
	}
	d, err := time.ParseDuration(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "headerloop:", err)
		os.Exit(2)
	}
	path := ""
	if len(os.Args) > 2 {
		path = os.Args[2]
	} else if path, err = activeFile(); err != nil {
		fmt.Fprintln(os.Stderr, "headerloop:", err)
		os.Exit(1)
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "headerloop:", err)
		os.Exit(1)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, os.Getpagesize(), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		fmt.Fprintln(os.Stderr, "headerloop: mmap:", err)
		os.Exit(1)
	}
	count := (*uint64)(unsafe.Pointer(&mem[152]))
	last, moved := atomic.LoadUint64(count), 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(d)
	for now := range tick.C {
		if n := atomic.LoadUint64(count); n != last {
			last = n
			moved++
		}
		if now.After(end) {
			break
		}
	}
	fmt.Println(moved)
}

// activeFile returns this machine's system.journal, persistent or volatile, whichever journald writes.
func activeFile() (string, error) {
	id, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return "", err
	}
	m := strings.TrimSpace(string(id))
	for _, dir := range []string{"/var/log/journal", "/run/log/journal"} {
		p := filepath.Join(dir, m, "system.journal")
		if st, err := headerState(p); err == nil && st == 1 {
			return p, nil
		}
	}
	return "", fmt.Errorf("no online system.journal under /var/log/journal or /run/log/journal")
}

func headerState(path string) (byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [17]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, err
	}
	return b[16], nil
}
