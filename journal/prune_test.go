package journal

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// pruneMatch selects the test's entries of kind p or kind n (two alternatives, as the sshd filter's
// default has three), each pre-selected by its GAOLER_KIND (the first field that is not broad).
func pruneMatch(t *testing.T, id string) Match {
	m, err := ParseMatch([]string{"GAOLER_KIND=p" + id, "GAOLER_TEST=" + id, "+", "GAOLER_KIND=n" + id, "GAOLER_TEST=" + id})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func kindEntries(id string, kinds string, from int) []map[string]string {
	out := make([]map[string]string, len(kinds))
	for i, k := range kinds {
		out[i] = map[string]string{"MESSAGE": fmt.Sprintf("entry %d", from+i), "GAOLER_TEST": id,
			"GAOLER_KIND": string(k) + id, "GAOLER_SEQ": strconv.Itoa(from + i)}
	}
	return out
}

// waitStored waits until the journal in dir holds n of the match's entries.
func waitStored(t *testing.T, dir string, m Match, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := Count(Options{Directory: dir, Matches: []Match{m}}, n+1)
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal holds %d entries, want %d", got, n)
		}
	}
}

// readAll reads the source to the end and returns the GAOLER_SEQ of each entry it delivers that
// satisfies m, in order.
func readAll(t *testing.T, s *sdSource, m Match) []int {
	t.Helper()
	batch := make([]Entry, 4)
	var seqs []int
	for i := 0; i < 1000; i++ {
		n, err := s.read(batch)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return seqs
		}
		for k := range batch[:n] {
			if !m.Satisfied(&batch[k]) {
				continue
			}
			seq, err := strconv.Atoi(batch[k].Field("GAOLER_SEQ"))
			if err != nil {
				t.Fatalf("entry without GAOLER_SEQ: %q", batch[k].Message)
			}
			seqs = append(seqs, seq)
		}
	}
	t.Fatal("the source did not reach the end")
	return nil
}

func wantSeqs(t *testing.T, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("read %v, want 0..%d once each, in order", got, n-1)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("read %v, want 0..%d once each, in order", got, n-1)
		}
	}
}

// TestPrunedPreselection: a term whose value no journal file holds is left out of sd-journal's
// pre-selection while the backlog is read, and the whole pre-selection takes over at the end of it,
// or as soon as an entry with that value is written; no entry is lost or read twice either way.
func TestPrunedPreselection(t *testing.T) {
	testenv.RequireRoot(t)
	ns := testenv.PrivateJournald(t)
	fields := []string{"MESSAGE", "_COMM", "_PID", "GAOLER_TEST", "GAOLER_KIND", "GAOLER_SEQ"}
	open := func(m Match) *sdSource {
		t.Helper()
		s, err := openSD(Options{Directory: ns.Dir, Matches: []Match{m}}, fields, func(w string) { t.Log(w) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.close() })
		return s
	}

	t.Run("value never written", func(t *testing.T) {
		id := fmt.Sprint(time.Now().UnixNano())
		m := pruneMatch(t, id)
		testenv.SendManyAsTo(t, ns.Socket, "gaolertest", kindEntries(id, "ppppppppp", 0), 0)
		waitStored(t, ns.Dir, m, 9)
		s := open(m)
		if s.probe == nil {
			t.Fatal("GAOLER_KIND=n is in no file, but the pre-selection was not pruned")
		}
		wantSeqs(t, readAll(t, s, m), 9)
		if s.probe != nil {
			t.Error("the pruned pre-selection outlived the backlog")
		}
		// After the backlog, the whole pre-selection: a new kind-n entry is read.
		testenv.SendManyAsTo(t, ns.Socket, "gaolertest", kindEntries(id, "np", 9), 0)
		waitStored(t, ns.Dir, m, 11)
		wantSeqs(t, append(make([]int, 0), append(seqRange(9), readAll(t, s, m)...)...), 11)
	})

	t.Run("value written while the backlog is read", func(t *testing.T) {
		id := fmt.Sprint(time.Now().UnixNano())
		m := pruneMatch(t, id)
		testenv.SendManyAsTo(t, ns.Socket, "gaolertest", kindEntries(id, "pppppppp", 0), 0)
		waitStored(t, ns.Dir, m, 8)
		s := open(m)
		if s.probe == nil {
			t.Fatal("GAOLER_KIND=n is in no file, but the pre-selection was not pruned")
		}
		// Before the first read: the pruned pre-selection would step over the kind-n entries to
		// the kind-p ones after them.
		testenv.SendManyAsTo(t, ns.Socket, "gaolertest", kindEntries(id, "npnnp", 8), 0)
		waitStored(t, ns.Dir, m, 13)
		wantSeqs(t, readAll(t, s, m), 13)
		if s.probe != nil {
			t.Error("the probe is still open after the backlog")
		}
	})

	t.Run("every value held", func(t *testing.T) {
		id := fmt.Sprint(time.Now().UnixNano())
		m := pruneMatch(t, id)
		testenv.SendManyAsTo(t, ns.Socket, "gaolertest", kindEntries(id, "pnpn", 0), 0)
		waitStored(t, ns.Dir, m, 4)
		s := open(m)
		if s.probe != nil {
			t.Error("pruned a pre-selection whose every value is held")
		}
		wantSeqs(t, readAll(t, s, m), 4)
	})
}

func seqRange(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
