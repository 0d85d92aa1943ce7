package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// profileEnv names the environment variable that, when set to a file name, makes gaolerd write a CPU
// profile of its whole run there (go tool pprof reads it). It is meant for measuring, as in the
// catch-up benchmark, not for production: see gaolerd(8).
const profileEnv = "GAOLERD_CPUPROFILE"

// startProfile starts the CPU profile profileEnv asks for and returns the function that ends it and
// writes the file. With profileEnv unset it does nothing; a profile that cannot be started is reported
// on stderr and the daemon runs without it.
func startProfile(stderr io.Writer) (stop func()) {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "gaolerd: %s: %v\n", profileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "gaolerd: %s: %v\n", profileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "gaolerd: %s: %v\n", profileEnv, err)
		}
	}
}
