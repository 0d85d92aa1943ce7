package journal

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

// TestFinder: entries are found again by their timestamp and PID, among others of the same
// microsecond, with their message and a cursor that is theirs.
func TestFinder(t *testing.T) {
	dir := t.TempDir()
	start := uint64(time.Now().Add(-time.Hour).UnixMicro())
	var b strings.Builder
	for i := 0; i < 300; i++ {
		usec := start + uint64(i/3) // three entries per microsecond, from three processes
		b.WriteString(testenv.ExportEntry(usec, "_UID=0", "_COMM=sshd", fmt.Sprintf("_PID=%d", 100+i%3),
			fmt.Sprintf("MESSAGE=entry %d", i)))
	}
	testenv.ExportToJournalDir(t, dir, b.String())
	f, err := OpenFinder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, i := range []int{0, 1, 2, 151, 299} {
		msg, cur, ok, err := f.Find(start+uint64(i/3), 100+i%3)
		if err != nil || !ok || msg != fmt.Sprintf("entry %d", i) || !strings.HasPrefix(cur, "s=") {
			t.Fatalf("Find(entry %d) = %q, %q, %v, %v", i, msg, cur, ok, err)
		}
		if ok, err := f.j.hasCursor(cur); err != nil || !ok {
			t.Errorf("entry %d: cursor %q not in the journal (%v)", i, cur, err)
		}
	}
	if _, _, ok, err := f.Find(start+1000, 100); ok || err != nil {
		t.Errorf("Find of no entry = %v, %v", ok, err)
	}
	if _, _, ok, _ := f.Find(start, 999); ok {
		t.Error("found an entry of another process")
	}
	es := []events.Entry{
		{Time: time.UnixMicro(int64(start + 10)), PID: 101},
		{Time: time.UnixMicro(int64(start + 11)), PID: 102, Message: "kept"},
		{Time: time.UnixMicro(int64(start + 5000)), PID: 100},
	}
	if missing, err := f.Complete(es); missing != 1 || err != nil {
		t.Fatalf("Complete = %d, %v", missing, err)
	}
	if es[0].Message != "entry 31" || es[0].Cursor == "" || es[1].Message != "kept" || es[1].Cursor == "" || es[2].Cursor != "" {
		t.Errorf("completed %+v", es)
	}
}
