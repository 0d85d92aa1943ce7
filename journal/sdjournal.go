package journal

/*
#cgo LDFLAGS: -lsystemd
#include <systemd/sd-journal.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// gaoler_fields names the fields that gaoler_read copies, in slot order.
typedef struct {
	int n;
	char **names;
	size_t *lens;
	size_t maxval;
} gaoler_fields;

static gaoler_fields *gaoler_fields_new(int n, size_t maxval) {
	gaoler_fields *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->n = n;
	f->maxval = maxval;
	f->names = calloc(n, sizeof(char *));
	f->lens = calloc(n, sizeof(size_t));
	if (!f->names || !f->lens) {
		free(f->names);
		free(f->lens);
		free(f);
		return NULL;
	}
	return f;
}

static void gaoler_fields_set(gaoler_fields *f, int i, char *name) {
	f->names[i] = name;
	f->lens[i] = strlen(name);
}

static void gaoler_fields_free(gaoler_fields *f) {
	if (!f)
		return;
	for (int i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names);
	free(f->lens);
	free(f);
}

#define GAOLER_ABSENT UINT32_MAX

// gaoler_read advances the journal by up to max entries and copies the wanted fields of each into buf;
// pos gets 2*(1 + f->n) numbers per entry, the offset in buf and the length of the cursor and then of
// each field (offset GAOLER_ABSENT for a missing field), and rt the entry's realtime timestamp. Only the
// last entry copied gets its cursor (sd_journal_get_cursor formats a string with asprintf, which costs
// about as much as reading the entry's fields); the others get GAOLER_ABSENT. It stops before advancing
// when buf could not hold one more entry, so an entry it has stepped onto is always copied. When skip is
// not NULL, the first entry reached is tested against that cursor and left out when it is the same
// entry: *skipped becomes 1 (left out), 0 (another entry) or stays -1 (no entry reached). Returns the
// number of entries copied, or a negative errno when none could be (or the last one's cursor could not
// be read: then none is delivered, and the caller re-positions after its last cursor).
static int gaoler_read(sd_journal *j, const gaoler_fields *f, int max, char *buf, size_t cap,
		uint32_t *pos, uint64_t *rt, size_t *used, const char *skip, int *skipped) {
	int n = 0, r = 0;
	size_t u = 0;
	int slots = 1 + f->n;
	// The most one entry can take: every field at its limit, and a cursor (about 130 bytes).
	size_t most = (size_t)f->n * f->maxval + 1024;

	*used = 0;
	while (n < max && cap - u >= most) {
		r = sd_journal_next(j);
		if (r <= 0)
			break;
		if (skip && *skipped < 0) {
			r = sd_journal_test_cursor(j, skip);
			*skipped = r > 0;
			if (r > 0)
				continue;
		}

		uint32_t *p = pos + (size_t)n * slots * 2;
		for (int k = 0; k < slots; k++)
			p[2 * k] = GAOLER_ABSENT, p[2 * k + 1] = 0;
		if (sd_journal_get_realtime_usec(j, &rt[n]) < 0)
			rt[n] = 0;

		// One pass over the entry's items; each pointer is only valid until the next call, so a
		// wanted value is copied at once.
		const void *d;
		size_t dl;
		int found = 0;
		sd_journal_restart_data(j);
		while (found < f->n && sd_journal_enumerate_data(j, &d, &dl) > 0) {
			const char *s = d;
			for (int k = 0; k < f->n; k++) {
				size_t nl = f->lens[k];
				if (dl <= nl || s[nl] != '=' || s[0] != f->names[k][0] || memcmp(s, f->names[k], nl) != 0)
					continue;
				uint32_t *q = p + 2 * (1 + k);
				if (q[0] != GAOLER_ABSENT)
					break; // a repeated field: keep the first value, as sd_journal_get_data does
				size_t vl = dl - nl - 1;
				if (vl > f->maxval)
					vl = f->maxval;
				memcpy(buf + u, s + nl + 1, vl);
				q[0] = u;
				q[1] = vl;
				u += vl;
				found++;
				break;
			}
		}
		n++;
	}
	if (n == 0) {
		*used = u;
		return r < 0 ? r : 0;
	}

	// The journal still stands on the last entry copied: sd_journal_next leaves the position alone
	// when it finds nothing (r == 0) or fails. Make sure of it before taking the cursor.
	uint64_t now;
	if (r <= 0 && (sd_journal_get_realtime_usec(j, &now) < 0 || now != rt[n - 1]))
		return -ESTALE;
	char *c = NULL;
	r = sd_journal_get_cursor(j, &c);
	if (r < 0)
		return r;
	size_t cl = strlen(c);
	uint32_t *p = pos + (size_t)(n - 1) * slots * 2;
	memcpy(buf + u, c, cl);
	p[0] = u;
	p[1] = cl;
	u += cl;
	free(c);
	*used = u;
	return n;
}

// gaoler_find seeks to the first entry at usec and steps through the entries with that timestamp
// (at most 64) to the first whose _PID is pid (pid == NULL: any). On finding one it sets *msg and
// *msglen to its MESSAGE (valid until the next call on j; NULL when it has none) and *cursor to its
// cursor, which the caller frees. Returns 1 when found, 0 when not, or a negative errno.
static int gaoler_find(sd_journal *j, uint64_t usec, const char *pid, size_t pidlen,
		const void **msg, size_t *msglen, char **cursor) {
	int r;
	sd_journal_flush_matches(j);
	if (pid) {
		// A match on the sender: sd-journal then steps through that _PID's entries of each file
		// only, instead of bisecting every file's whole entry array.
		char term[32];
		if (pidlen > 20)
			return 0;
		memcpy(term, "_PID=", 5);
		memcpy(term + 5, pid, pidlen);
		r = sd_journal_add_match(j, term, 5 + pidlen);
		if (r < 0)
			return r;
	}
	r = sd_journal_seek_realtime_usec(j, usec);
	if (r < 0)
		return r;
	for (int k = 0; k < 64; k++) {
		r = sd_journal_next(j);
		if (r <= 0)
			return r;
		uint64_t t;
		r = sd_journal_get_realtime_usec(j, &t);
		if (r < 0)
			return r;
		if (t > usec)
			return 0;
		if (t < usec)
			continue;
		const void *d;
		size_t dl;
		if (pid) {
			if (sd_journal_get_data(j, "_PID", &d, &dl) < 0 || dl != 5 + pidlen || memcmp((const char *)d + 5, pid, pidlen) != 0)
				continue;
		}
		r = sd_journal_get_cursor(j, cursor);
		if (r < 0)
			return r;
		*msg = NULL;
		*msglen = 0;
		if (sd_journal_get_data(j, "MESSAGE", &d, &dl) >= 0 && dl >= 8) {
			*msg = (const char *)d + 8;
			*msglen = dl - 8;
		}
		return 1;
	}
	return 0;
}

// gaoler_any reports whether some entry of the journal satisfies its matches: 1 or 0, or a negative
// errno. It moves the read position.
static int gaoler_any(sd_journal *j) {
	int r = sd_journal_seek_head(j);
	if (r < 0)
		return r;
	return sd_journal_next(j);
}

// gaoler_add_match adds one FIELD=value term.
static int gaoler_add_match(sd_journal *j, const char *s, size_t len) {
	return sd_journal_add_match(j, s, len);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"unsafe"
)

// maxValue bounds the bytes copied from one field of an entry: messages longer than this are cut. It
// matches libsystemd's default data threshold for compressed fields.
const maxValue = 64 << 10

// sdJournal is the cgo binding: one sd_journal handle and the buffers its batched reads fill. It is used
// by one goroutine at a time, as sd-journal requires.
type sdJournal struct {
	j       *C.sd_journal
	fields  *C.gaoler_fields
	names   []string // field names in slot order
	scratch []byte   // the C helper's output, copied into one string per batch
	pos     []uint32
	rt      []uint64
}

func errnoErr(op string, r C.int) error {
	return fmt.Errorf("%s: %w", op, syscall.Errno(-r))
}

// openJournal opens the local system's journal (dir == "") or the journal files in dir.
func openJournal(dir string) (*sdJournal, error) {
	var j *C.sd_journal
	var r C.int
	if dir == "" {
		r = C.sd_journal_open(&j, C.SD_JOURNAL_LOCAL_ONLY)
	} else {
		cs := C.CString(dir)
		r = C.sd_journal_open_directory(&j, cs, 0)
		C.free(unsafe.Pointer(cs))
	}
	if r < 0 {
		return nil, errnoErr("sd_journal_open", r)
	}
	return &sdJournal{j: j}, nil
}

// setFields sets the fields that read copies, and sizes the buffers for batches of up to max entries.
func (s *sdJournal) setFields(names []string, max int) error {
	if len(names) > 64 {
		return errors.New("journal: more than 64 fields requested")
	}
	f := C.gaoler_fields_new(C.int(len(names)), maxValue)
	if f == nil {
		return syscall.ENOMEM
	}
	for i, n := range names {
		C.gaoler_fields_set(f, C.int(i), C.CString(n))
	}
	C.gaoler_fields_free(s.fields)
	s.fields = f
	s.names = names
	s.scratch = make([]byte, 1<<20+len(names)*maxValue+4096)
	s.pos = make([]uint32, 2*max*(1+len(names)))
	s.rt = make([]uint64, max)
	return nil
}

// read advances by up to len(batch) entries and fills batch; see gaoler_read. Only the last entry filled
// gets its cursor. skip, when not "", is a cursor to leave out if it is the first entry reached; skipped
// reports what happened to it (-1: no entry reached yet, 0: first entry was another one, 1: left out).
func (s *sdJournal) read(batch []Entry, skip string) (n int, skipped int, err error) {
	var cskip *C.char
	if skip != "" {
		cskip = C.CString(skip)
		defer C.free(unsafe.Pointer(cskip))
	}
	cskipped := C.int(-1)
	var used C.size_t
	r := C.gaoler_read(s.j, s.fields, C.int(len(batch)),
		(*C.char)(unsafe.Pointer(&s.scratch[0])), C.size_t(len(s.scratch)),
		(*C.uint32_t)(unsafe.Pointer(&s.pos[0])), (*C.uint64_t)(unsafe.Pointer(&s.rt[0])),
		&used, cskip, &cskipped)
	if r < 0 {
		return 0, int(cskipped), errnoErr("reading entries", r)
	}
	n = int(r)
	if n == 0 {
		return 0, int(cskipped), nil
	}
	// One string per batch; every cursor and value is a substring of it, so the strings are safe
	// to keep after the batch (they keep the batch's text alive).
	text := string(s.scratch[:used])
	slots := 1 + len(s.names)
	for i := 0; i < n; i++ {
		e := &batch[i]
		p := s.pos[2*i*slots : 2*(i+1)*slots]
		e.Realtime = s.rt[i]
		e.Cursor = ""
		if p[0] != C.GAOLER_ABSENT {
			e.Cursor = text[p[0] : p[0]+p[1]]
		}
		e.names = s.names
		if cap(e.values) < len(s.names) {
			e.values = make([]string, len(s.names))
		}
		e.values = e.values[:len(s.names)]
		for k := range s.names {
			q := p[2*(1+k):]
			if q[0] == C.GAOLER_ABSENT {
				e.values[k] = ""
				continue
			}
			e.values[k] = text[q[0] : q[0]+q[1]]
		}
		e.Message = e.values[0]
	}
	return n, int(cskipped), nil
}

// find returns the MESSAGE and cursor of the entry at usec sent by pid (0: any); see gaoler_find.
// It moves the read position.
func (s *sdJournal) find(usec uint64, pid int) (message, cursor string, ok bool, err error) {
	var cpid *C.char
	var pidlen C.size_t
	if pid > 0 {
		p := strconv.Itoa(pid)
		cpid = C.CString(p)
		defer C.free(unsafe.Pointer(cpid))
		pidlen = C.size_t(len(p))
	}
	var msg unsafe.Pointer
	var msglen C.size_t
	var ccur *C.char
	r := C.gaoler_find(s.j, C.uint64_t(usec), cpid, pidlen, &msg, &msglen, &ccur)
	if r < 0 {
		return "", "", false, errnoErr("looking an entry up", r)
	}
	if r == 0 {
		return "", "", false, nil
	}
	cursor = C.GoString(ccur)
	C.free(unsafe.Pointer(ccur))
	if msg != nil {
		message = C.GoStringN((*C.char)(msg), C.int(min(msglen, maxValue)))
	}
	return message, cursor, true, nil
}

func (s *sdJournal) addMatch(term string) error {
	cs := C.CString(term)
	defer C.free(unsafe.Pointer(cs))
	if r := C.gaoler_add_match(s.j, cs, C.size_t(len(term))); r < 0 {
		return fmt.Errorf("sd_journal_add_match %q: %w", term, syscall.Errno(-r))
	}
	return nil
}

// holds reports whether some entry of the journal has the FIELD=value term: the matches are replaced
// by term alone and flushed afterwards, and the read position moves (seek afterwards). For a value
// that no file holds it is one hash table lookup per file.
func (s *sdJournal) holds(term string) (bool, error) {
	s.flushMatches()
	defer s.flushMatches()
	if err := s.addMatch(term); err != nil {
		return false, err
	}
	return s.any()
}

// any reports whether some entry satisfies the journal's matches. It moves the read position.
func (s *sdJournal) any() (bool, error) {
	r := C.gaoler_any(s.j)
	if r < 0 {
		return false, errnoErr("looking for an entry", r)
	}
	return r > 0, nil
}

func (s *sdJournal) addDisjunction() error {
	if r := C.sd_journal_add_disjunction(s.j); r < 0 {
		return errnoErr("sd_journal_add_disjunction", r)
	}
	return nil
}

func (s *sdJournal) flushMatches() { C.sd_journal_flush_matches(s.j) }

func (s *sdJournal) seekCursor(cursor string) error {
	cs := C.CString(cursor)
	defer C.free(unsafe.Pointer(cs))
	if r := C.sd_journal_seek_cursor(s.j, cs); r < 0 {
		return errnoErr("sd_journal_seek_cursor", r)
	}
	return nil
}

func (s *sdJournal) seekRealtime(usec uint64) error {
	if r := C.sd_journal_seek_realtime_usec(s.j, C.uint64_t(usec)); r < 0 {
		return errnoErr("sd_journal_seek_realtime_usec", r)
	}
	return nil
}

func (s *sdJournal) seekHead() error {
	if r := C.sd_journal_seek_head(s.j); r < 0 {
		return errnoErr("sd_journal_seek_head", r)
	}
	return nil
}

// hasCursor reports whether the journal (without matches) still has the entry with cursor. It moves
// the read position: seek afterwards.
func (s *sdJournal) hasCursor(cursor string) (bool, error) {
	if err := s.seekCursor(cursor); err != nil {
		return false, err
	}
	cs := C.CString(cursor)
	defer C.free(unsafe.Pointer(cs))
	r := C.sd_journal_next(s.j)
	if r == 0 {
		// Nothing at or after the position: the entry, if it exists, is the last one.
		r = C.sd_journal_previous(s.j)
	}
	if r < 0 {
		return false, errnoErr("sd_journal_next", r)
	}
	if r == 0 {
		return false, nil
	}
	r = C.sd_journal_test_cursor(s.j, cs)
	if r < 0 {
		return false, errnoErr("sd_journal_test_cursor", r)
	}
	return r > 0, nil
}

// fd returns the descriptor to poll and the events to poll for (sd_journal_get_fd, _get_events). The
// first call creates the inotify watches.
func (s *sdJournal) fd() (int, int16, error) {
	fd := C.sd_journal_get_fd(s.j)
	if fd < 0 {
		return -1, 0, errnoErr("sd_journal_get_fd", fd)
	}
	ev := C.sd_journal_get_events(s.j)
	if ev < 0 {
		return -1, 0, errnoErr("sd_journal_get_events", ev)
	}
	return int(fd), int16(ev), nil
}

// timeoutUsec returns sd_journal_get_timeout's absolute CLOCK_MONOTONIC deadline, or ^0 for none (the
// case for local files, which inotify watches reliably).
func (s *sdJournal) timeoutUsec() uint64 {
	var t C.uint64_t
	if r := C.sd_journal_get_timeout(s.j, &t); r < 0 {
		return ^uint64(0)
	}
	return uint64(t)
}

// Journal change kinds, as sd_journal_process returns them.
const (
	changeNone       = C.SD_JOURNAL_NOP
	changeAppend     = C.SD_JOURNAL_APPEND
	changeInvalidate = C.SD_JOURNAL_INVALIDATE
)

func (s *sdJournal) process() (int, error) {
	r := C.sd_journal_process(s.j)
	if r < 0 {
		return 0, errnoErr("sd_journal_process", r)
	}
	return int(r), nil
}

func (s *sdJournal) close() {
	if s.j != nil {
		C.sd_journal_close(s.j)
		s.j = nil
	}
	C.gaoler_fields_free(s.fields)
	s.fields = nil
}
