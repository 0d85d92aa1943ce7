//go:build gaolerprof

package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// A profiling hook for measuring where gaolerd's memory goes (see BenchmarkFlood), built only with
// `-tags gaolerprof` (GAOLER_BUILD_TAGS=gaolerprof for the benchmarks): with GAOLER_HEAP_PROFILE set
// to a file name, gaolerd writes a heap profile there each time its heap reaches a new peak, looked
// at twice a second, and the runtime's memory statistics beside it (the name with ".txt").
func init() {
	path := os.Getenv("GAOLER_HEAP_PROFILE")
	if path == "" {
		return
	}
	go func() {
		var peak uint64
		for range time.Tick(500 * time.Millisecond) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= peak+peak/50 {
				continue
			}
			peak = ms.HeapInuse
			write(path, 0)
			write(path+".txt", 1) // ends with the runtime.MemStats
		}
	}()
}

// write writes the heap profile to path, whole or not at all (gaolerd may be stopped meanwhile).
func write(path string, debug int) {
	f, err := os.Create(path + ".new")
	if err != nil {
		return
	}
	err = pprof.Lookup("heap").WriteTo(f, debug)
	if f.Close() == nil && err == nil {
		os.Rename(path+".new", path)
	}
}
