package memlimit

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestInForce(t *testing.T) {
	for _, c := range []struct{ limit, live, want int64 }{
		{160 << 20, 10 << 20, 160 << 20},
		{160 << 20, 128 << 20, 160 << 20}, // 128 + 32 = 160: still the configured limit
		{160 << 20, 200 << 20, 250 << 20},
	} {
		if got := InForce(c.limit, c.live); got != c.want {
			t.Errorf("InForce(%d, %d) = %d, want %d", c.limit, c.live, got, c.want)
		}
	}
}

func TestKeep(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	t.Setenv("GOMEMLIMIT", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	Keep(ctx, 0)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory_limit 0: runtime limit %d, want none", got)
	}

	// A live heap larger than the configured limit raises the limit above it, within a Period or two.
	const limit = 32 << 20
	held := make([][]byte, 0, 48)
	for range cap(held) {
		held = append(held, make([]byte, 1<<20))
	}
	Keep(ctx, limit)
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("runtime limit %d right after Keep, want %d", got, limit)
	}
	deadline := time.Now().Add(10 * Period)
	for debug.SetMemoryLimit(-1) == limit && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(Period / 10)
	}
	if got := debug.SetMemoryLimit(-1); got < 48<<20+12<<20 {
		t.Errorf("with 48 MiB live the limit is %d, want at least 60 MiB", got)
	}
	runtime.KeepAlive(held)
	cancel()

	// GOMEMLIMIT wins: Keep leaves the runtime's limit alone.
	debug.SetMemoryLimit(300 << 20)
	t.Setenv("GOMEMLIMIT", "300MiB")
	Keep(context.Background(), limit)
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("with GOMEMLIMIT set: runtime limit %d, want 300 MiB", got)
	}
}
