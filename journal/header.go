package journal

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The header of a journal file, as systemd's JOURNAL_FILE_FORMAT documents it
// (https://systemd.io/JOURNAL_FILE_FORMAT/): an 8-byte signature, a state byte at offset 16, and at
// offset 152 the little-endian 64-bit count of entries, which journald increments with every entry
// it appends, in the page every reader maps.
const (
	headerSignature  = "LPKSHHRH"
	headerStateAt    = 16
	headerSizeAt     = 88
	headerNEntriesAt = 152
	headerMinSize    = headerNEntriesAt + 8

	// A file's state: journald marks the file it writes to online while it appends and offline
	// after each sync (and when it stops), and archived when it rotates it, for good.
	stateArchived = 2
)

// rescanEvery is the most often a headerWatch looks for the files journald writes to when it has
// none (journald stopped, a file just created, between a rotation and the new file, or a directory of
// files nobody writes to): meanwhile the Reader asks sd-journal every hotPoll, as without a watch.
const rescanEvery = 100 * time.Millisecond

// headerWatch tells whether journald appended to the journal files it is writing, by reading each
// file's entry count from a shared, read-only mapping of its header: one memory load per file and
// check, no system call. It watches the active files of its directories (system.journal,
// user-UID.journal: those not archived, whose names have no '@'); a watched file that journald
// archives (rotation) makes it look again, as does rescan (the Reader calls it when sd-journal
// reports files added or removed: a rotation, a vacuum, journald replacing a file it found dirty).
//
// It is the cheap half of the hot Reader: sd_journal_next, even when it finds nothing, costs far more
// than this load, so the Reader calls it only when a count moved.
type headerWatch struct {
	dirs     []string
	files    []mappedHeader
	states   []uintptr // the address of each file's state byte, for gaoler_hot_wait
	counts   []uintptr // the address of each file's n_entries
	sum      uint64    // the counts' sum when last looked at
	lastScan time.Time
	now      func() time.Time
}

type mappedHeader struct {
	mem []byte
}

// newHeaderWatch watches the journal files in dir, or, for dir "", the local system's journal
// (/run/log/journal and /var/log/journal, under this machine's ID). It returns nil when it cannot tell
// where those are (no machine ID).
func newHeaderWatch(dir string, now func() time.Time) *headerWatch {
	var dirs []string
	if dir != "" {
		dirs = []string{dir}
		subs, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, s := range subs {
			if fi, err := os.Stat(s); err == nil && fi.IsDir() {
				dirs = append(dirs, s)
			}
		}
	} else {
		id, err := os.ReadFile("/etc/machine-id")
		if err != nil {
			return nil
		}
		m := strings.TrimSpace(string(id))
		dirs = []string{filepath.Join("/run/log/journal", m), filepath.Join("/var/log/journal", m)}
	}
	h := &headerWatch{dirs: dirs, now: now}
	h.rescan()
	return h
}

// watching reports whether the watch has active files to watch; when not, it looks for them again
// if it last looked rescanEvery ago.
func (h *headerWatch) watching() bool {
	if len(h.files) == 0 && h.now().Sub(h.lastScan) >= rescanEvery {
		h.rescan()
	}
	return len(h.files) > 0
}

// rescan maps the headers of the active journal files anew.
func (h *headerWatch) rescan() {
	h.unmap()
	h.lastScan = h.now()
	for _, d := range h.dirs {
		names, _ := filepath.Glob(filepath.Join(d, "*.journal"))
		for _, name := range names {
			if strings.Contains(filepath.Base(name), "@") {
				continue // archived: journald never writes to it again
			}
			if m, ok := mapHeader(name); ok {
				h.files = append(h.files, m)
				h.states = append(h.states, uintptr(unsafe.Pointer(&m.mem[headerStateAt])))
				h.counts = append(h.counts, uintptr(unsafe.Pointer(&m.mem[headerNEntriesAt])))
			}
		}
	}
	h.sum = h.count()
}

// mapHeader maps the header of the journal file at path, if it is one and not archived.
func mapHeader(path string) (mappedHeader, bool) {
	f, err := os.Open(path)
	if err != nil {
		return mappedHeader{}, false
	}
	defer f.Close()
	// A page past the end of the file is no memory to read (SIGBUS): journald creates a file
	// before it writes the header, and never shrinks one it has open.
	if fi, err := f.Stat(); err != nil || fi.Size() < int64(os.Getpagesize()) {
		return mappedHeader{}, false
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, os.Getpagesize(), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return mappedHeader{}, false
	}
	m := mappedHeader{mem: mem}
	if string(mem[:8]) != headerSignature || binary.LittleEndian.Uint64(mem[headerSizeAt:]) < headerMinSize ||
		m.state() >= stateArchived {
		unix.Munmap(mem)
		return mappedHeader{}, false
	}
	return m, true
}

func (m mappedHeader) state() uint8 { return m.mem[headerStateAt] }

// entries loads the file's n_entries. journald stores it with a plain aligned 64-bit write; an
// atomic load sees it whole. (In the host's byte order, not the file's: only changes matter.)
func (m mappedHeader) entries() uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&m.mem[headerNEntriesAt])))
}

func (h *headerWatch) count() uint64 {
	var n uint64
	for _, f := range h.files {
		n += f.entries()
	}
	return n
}

// changed reports whether a count moved since the last call (gaoler_hot_wait does the same in C).
// When a watched file was archived it looks for the active files again and reports a change, so
// that the caller asks sd-journal.
func (h *headerWatch) changed() bool {
	for _, f := range h.files {
		if f.state() >= stateArchived {
			h.rescan()
			return true
		}
	}
	n := h.count()
	if n == h.sum {
		return false
	}
	h.sum = n
	return true
}

func (h *headerWatch) unmap() {
	for _, f := range h.files {
		unix.Munmap(f.mem)
	}
	h.files, h.states, h.counts = nil, nil, nil
}

func (h *headerWatch) close() { h.unmap() }
