package journal

import (
	"os"
	"testing"
	"time"
)

// TestMain lets HOTRESEEK=<duration> change the stuck-tail guard's interval, to measure what it saves.
func TestMain(m *testing.M) {
	if d := os.Getenv("HOTRESEEK"); d != "" {
		hotReseek, _ = time.ParseDuration(d)
	}
	os.Exit(m.Run())
}
