package journal

/*
#include <errno.h>
#include <poll.h>
#include <stdint.h>

// gaoler_hot_wait is the hot Reader's wait: up to max_ms times, it polls fds for 1 ms and then reads
// the n mapped journal headers, the state byte at states[i] and the entry count at counts[i]. It
// returns 2 when a descriptor is ready, 3 when a file was archived, 1 when the counts' sum
// differs from *sum (which it updates), 0 after max_ms polls, or -errno. One call covers many
// polls, so the Go runtime sees one cgo call instead of a system call (and its scheduler
// bookkeeping, and sysmon's attention) every millisecond.
static int gaoler_hot_wait(struct pollfd *fds, int nfds, const uintptr_t *states, const uintptr_t *counts,
		int n, uint64_t *sum, int max_ms) {
	for (int i = 0; i < max_ms; i++) {
		int r = poll(fds, nfds, 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r > 0)
			return 2;
		uint64_t s = 0;
		for (int k = 0; k < n; k++) {
			if (*(volatile const uint8_t *)states[k] >= 2)
				return 3;
			s += __atomic_load_n((const uint64_t *)counts[k], __ATOMIC_RELAXED);
		}
		if (s != *sum) {
			*sum = s;
			return 1;
		}
	}
	return 0;
}
*/
import "C"

import (
	"fmt"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hotChunk is the longest one hotWaitC call lasts (see sdSource.hotWait).
const hotChunk = 5 * time.Millisecond

// What hotWaitC saw.
const (
	hotTimeout = iota
	hotCount   // an entry count moved
	hotReady   // a descriptor is ready
	hotGone    // a watched file was archived
)

// hotWaitC polls fds every millisecond for up to longest and watches h's files in between; see
// gaoler_hot_wait. fds is Go memory holding no Go pointers, and the headers are mapped outside
// Go's heap, so both may be handed to C.
func hotWaitC(fds []unix.PollFd, h *headerWatch, longest time.Duration) (int, error) {
	ms := max(int(longest/time.Millisecond), 1)
	var states, counts *C.uintptr_t
	if len(h.states) > 0 {
		states = (*C.uintptr_t)(unsafe.Pointer(&h.states[0]))
		counts = (*C.uintptr_t)(unsafe.Pointer(&h.counts[0]))
	}
	sum := C.uint64_t(h.sum)
	r := C.gaoler_hot_wait((*C.struct_pollfd)(unsafe.Pointer(&fds[0])), C.int(len(fds)), states, counts,
		C.int(len(h.states)), &sum, C.int(ms))
	h.sum = uint64(sum)
	if r < 0 {
		return 0, fmt.Errorf("poll: %w", syscall.Errno(-r))
	}
	return int(r), nil
}
