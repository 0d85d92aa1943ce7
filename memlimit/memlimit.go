// Package memlimit keeps the Go runtime's soft memory limit for the daemon: the configured
// [daemon] memory_limit while the live heap is well below it, and a limit that follows the live heap
// up (Headroom above it) when the state itself outgrows it.
//
// Without a limit the garbage collector lets the heap grow to twice what is live (GOGC=100): under a
// flood of bans that doubling, not the state, was most of the daemon's peak memory. A fixed limit
// below the live heap has the opposite fault: the collector runs back to back, up to half of the CPU,
// for as long as the state stays that large (a 200,000-address flood's bans last bantime). So the
// limit in force is max(limit, live + live/Headroom), looked at every Period.
package memlimit

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Headroom is the fraction of the live heap (1/Headroom) the limit keeps above it once the live heap
// outgrows the configured limit: the collector then runs about as often as with GOGC=25.
const Headroom = 4

// Period is how often the limit is adjusted to the live heap.
const Period = time.Second

// FromEnv reports whether GOMEMLIMIT is set: the runtime applied it at start, and it wins over the
// configuration.
func FromEnv() bool { return os.Getenv("GOMEMLIMIT") != "" }

// Keep applies limit (bytes; 0 for none, which leaves the runtime without one) until ctx ends,
// adjusting it to the live heap every Period. With GOMEMLIMIT set it does nothing.
func Keep(ctx context.Context, limit int64) {
	if FromEnv() {
		return
	}
	if limit <= 0 {
		debug.SetMemoryLimit(math.MaxInt64) // the runtime's default: none
		return
	}
	debug.SetMemoryLimit(limit)
	go func() {
		t := time.NewTicker(Period)
		defer t.Stop()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				debug.SetMemoryLimit(InForce(limit, int64(sample[0].Value.Uint64())))
			}
		}
	}()
}

// InForce is the limit Keep sets for the configured limit and a live heap of live bytes.
func InForce(limit, live int64) int64 {
	return max(limit, live+live/Headroom)
}
