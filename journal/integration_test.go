package journal

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

// testRun returns a value unique to this test, and a match for sshd entries carrying it.
func testRun(t *testing.T) (string, Match) {
	id := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	m, err := ParseMatch([]string{"_UID=0", "_COMM=sshd", "GAOLER_TEST=" + id})
	if err != nil {
		t.Fatal(err)
	}
	return id, m
}

func entries(id string, from, n int) []map[string]string {
	out := make([]map[string]string, n)
	for i := range out {
		out[i] = map[string]string{"MESSAGE": fmt.Sprintf("entry %d", from+i), "GAOLER_TEST": id, "GAOLER_SEQ": strconv.Itoa(from + i)}
	}
	return out
}

// collector runs a Reader and records the GAOLER_SEQ of every entry it delivers.
type collector struct {
	mu      sync.Mutex
	seqs    []int
	lat     []time.Duration // now - entry timestamp at delivery
	at      []time.Time     // entry timestamps
	seen    []time.Time     // delivery times
	last    Position
	fail    bool // report every entry as a failure (makes the reader hot)
	done    chan error
	cancel  context.CancelFunc
	r       *Reader
	changed chan struct{}
}

func startCollector(t *testing.T, o Options, fail bool) *collector {
	t.Helper()
	o.Fields = append(o.Fields, "GAOLER_SEQ")
	r, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{fail: fail, done: make(chan error, 1), cancel: cancel, r: r, changed: make(chan struct{}, 1)}
	go func() {
		c.done <- r.Run(ctx, func(b []Entry) uint64 {
			now := time.Now()
			c.mu.Lock()
			defer c.mu.Unlock()
			var last uint64
			for i := range b {
				seq, err := strconv.Atoi(b[i].Field("GAOLER_SEQ"))
				if err != nil {
					t.Errorf("entry without GAOLER_SEQ: %q", b[i].Message)
				}
				c.seqs = append(c.seqs, seq)
				c.lat = append(c.lat, now.Sub(time.UnixMicro(int64(b[i].Realtime))))
				c.at = append(c.at, time.UnixMicro(int64(b[i].Realtime)))
				c.seen = append(c.seen, now)
				if c.fail {
					last = b[i].Realtime
				}
			}
			c.last = PositionOf(&b[len(b)-1])
			select {
			case c.changed <- struct{}{}:
			default:
			}
			return last
		})
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *collector) stop(t *testing.T) {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		if err != context.Canceled {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	c.r.Close()
}

// waitFor waits until n entries were delivered (or timeout) and returns a copy of the sequence numbers.
func (c *collector) waitFor(t *testing.T, n int, timeout time.Duration) []int {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		got := append([]int(nil), c.seqs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("got %d entries, want %d", len(got), n)
		}
	}
}

func checkExactlyOnce(t *testing.T, seqs []int, from, n int) {
	t.Helper()
	s := append([]int(nil), seqs...)
	sort.Ints(s)
	if len(s) != n {
		t.Errorf("got %d entries, want %d", len(s), n)
	}
	for i, v := range s {
		if v != from+i {
			t.Fatalf("entries not seen exactly once: at %d got seq %d, want %d (first ones %v)", i, v, from+i, s[:min(len(s), 20)])
		}
	}
	if !sort.IntsAreSorted(seqs) {
		t.Errorf("entries out of order")
	}
}

func TestFollowSystemJournal(t *testing.T) {
	testenv.Journald(t)
	id, m := testRun(t)
	since := uint64(time.Now().Add(-time.Second).UnixMicro())
	c := startCollector(t, Options{Matches: []Match{m}, SinceUsec: since, Fields: []string{"_UID"}}, false)
	testenv.SendAs(t, "sshd", map[string]string{"MESSAGE": "hello", "GAOLER_TEST": id, "GAOLER_SEQ": "0"})
	// An entry from another process must not pass the match.
	testenv.SendAs(t, "logger", map[string]string{"MESSAGE": "no", "GAOLER_TEST": id, "GAOLER_SEQ": "1"})
	testenv.SendAs(t, "sshd", map[string]string{"MESSAGE": "bye", "GAOLER_TEST": id, "GAOLER_SEQ": "2"})
	got := c.waitFor(t, 2, 5*time.Second)
	if fmt.Sprint(got) != "[0 2]" {
		t.Errorf("seqs = %v, want [0 2]", got)
	}
	// The fields of a delivered entry.
	r, err := Open(Options{Matches: []Match{m}, SinceUsec: since})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var first Entry
	var cursors []string
	r.Run(ctx, func(b []Entry) uint64 {
		first = b[0]
		for i := range b {
			cursors = append(cursors, b[i].Cursor)
		}
		cancel()
		return 0
	})
	if first.Message != "hello" || first.Field("_COMM") != "sshd" || first.Field("_UID") != "0" ||
		first.Field("_PID") == "" || first.Field("GAOLER_TEST") != id || first.Realtime < since {
		t.Errorf("entry = %+v", first)
	}
	// Only the last entry of a batch carries its cursor.
	for i, c := range cursors {
		if (c != "") != (i == len(cursors)-1) || (c != "" && !strings.HasPrefix(c, "s=")) {
			t.Errorf("cursors of the batch = %q, want only the last one", cursors)
			break
		}
	}
}

func TestResumeAfterCursorExactlyOnce(t *testing.T) {
	testenv.Journald(t)
	id, m := testRun(t)
	since := uint64(time.Now().Add(-time.Second).UnixMicro())
	testenv.SendManyAs(t, "sshd", entries(id, 0, 5), 0)
	c := startCollector(t, Options{Matches: []Match{m}, SinceUsec: since}, false)
	c.waitFor(t, 5, 5*time.Second)
	c.mu.Lock()
	pos := c.last // after the 5th entry, the last one delivered
	c.mu.Unlock()
	c.stop(t)
	if pos.Cursor == "" {
		t.Fatalf("no cursor after the last entry: %+v", pos)
	}
	testenv.SendManyAs(t, "sshd", entries(id, 5, 5), 0)

	// Resume after the 5th entry: the next Reader must start at the 6th.

	warned := ""
	c2 := startCollector(t, Options{Matches: []Match{m}, Start: pos, SinceUsec: since, Warn: func(s string) { warned = s }}, false)
	testenv.SendManyAs(t, "sshd", entries(id, 10, 3), 0)
	c2.waitFor(t, 8, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	c2.stop(t)
	checkExactlyOnce(t, c2.seqs, 5, 8)
	if warned != "" {
		t.Errorf("unexpected warning: %s", warned)
	}

	// A position whose entry is gone: a warning, then the entries from its timestamp on.
	gone := Position{Cursor: "s=0123456789abcdef0123456789abcdef;i=1;b=0123456789abcdef0123456789abcdef;m=1;t=1;x=1",
		RealtimeUsec: pos.RealtimeUsec}
	c3 := startCollector(t, Options{Matches: []Match{m}, Start: gone, Warn: func(s string) { warned = s }}, false)
	c3.waitFor(t, 9, 5*time.Second) // entries 4 (at the timestamp) to 12
	c3.stop(t)
	checkExactlyOnce(t, c3.seqs, 4, 9)
	if !strings.Contains(warned, "no longer has") {
		t.Errorf("warning = %q", warned)
	}
}

// exportEntries returns n entries in journal export format, one millisecond apart from start.
func exportEntries(id string, from, n int, start time.Time) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		ts := start.Add(time.Duration(i) * time.Millisecond)
		fmt.Fprintf(&b, "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"+
			"_UID=0\n_COMM=sshd\n_PID=42\nGAOLER_TEST=%s\nGAOLER_SEQ=%d\nMESSAGE=entry %d\n\n",
			ts.UnixMicro(), 1000+i+from, id, from+i, from+i)
	}
	return b.String()
}

func TestDirectoryFromJournalRemote(t *testing.T) {
	dir := t.TempDir()
	id, m := testRun(t)
	start := time.Now().Add(-time.Hour)
	testenv.ExportToJournalDir(t, dir, exportEntries(id, 0, 2000, start))
	c := startCollector(t, Options{Directory: dir, Matches: []Match{m}}, false)
	c.waitFor(t, 2000, 10*time.Second)
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	c.stop(t)
	checkExactlyOnce(t, c.seqs, 0, 2000)

	// Replace the file (the old entries vacuumed, new ones written): a warning, then the new entries.
	os.Remove(filepath.Join(dir, "remote.journal"))
	testenv.ExportToJournalDir(t, dir, exportEntries(id, 2000, 100, start.Add(time.Hour)))
	var warned string
	c2 := startCollector(t, Options{Directory: dir, Matches: []Match{m}, Start: last, Warn: func(s string) { warned = s }}, false)
	c2.waitFor(t, 100, 10*time.Second)
	c2.stop(t)
	checkExactlyOnce(t, c2.seqs, 2000, 100)
	if warned == "" {
		t.Error("no warning for a vacuumed position")
	}
}

// TestNoLossAcrossRotateVacuumRestart writes entries while the journal is rotated, vacuumed and
// journald restarted, with the reader cold (woken by journald) and hot (watching the files' headers,
// every entry a failure): every entry is delivered once, in order.
func TestNoLossAcrossRotateVacuumRestart(t *testing.T) {
	for _, hot := range []bool{false, true} {
		t.Run(fmt.Sprint("hot=", hot), func(t *testing.T) { noLossAcrossRotateVacuumRestart(t, hot) })
	}
}

func noLossAcrossRotateVacuumRestart(t *testing.T, hot bool) {
	ns := testenv.PrivateJournald(t)
	id, m := testRun(t)
	c := startCollector(t, Options{Directory: ns.Dir, Matches: []Match{m}}, hot)
	const n = 3000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		testenv.SendManyAsTo(t, ns.Socket, "sshd", entries(id, 0, n), time.Millisecond)
	}()
	time.Sleep(500 * time.Millisecond)
	ns.Journalctl(t, "--rotate")
	time.Sleep(700 * time.Millisecond)
	ns.Journalctl(t, "--vacuum-files=1")
	time.Sleep(300 * time.Millisecond)
	ns.Restart(t, func() { time.Sleep(300 * time.Millisecond) })
	time.Sleep(300 * time.Millisecond)
	ns.Journalctl(t, "--rotate")
	<-sent
	time.Sleep(2 * time.Second)
	c.stop(t)
	// journald itself loses the datagrams queued on its socket when it is stopped; those are the
	// only entries the reader may miss. The vacuum removed no entry the reader had not read yet.
	have := map[int]int{}
	for _, s := range c.seqs {
		have[s]++
	}
	out, err := exec.Command("journalctl", "--namespace="+ns.Name, "GAOLER_TEST="+id, "-o", "cat", "--output-fields=GAOLER_SEQ").Output()
	if err != nil {
		t.Fatal(err)
	}
	inJournal := map[int]bool{}
	for _, l := range strings.Fields(string(out)) {
		v, _ := strconv.Atoi(l)
		inJournal[v] = true
	}
	lostByJournald := 0
	for i := 0; i < n; i++ {
		switch {
		case have[i] > 1:
			t.Errorf("seq %d delivered %d times", i, have[i])
		case have[i] == 0 && inJournal[i]:
			t.Errorf("seq %d is in the journal but was not delivered", i)
		case have[i] == 0:
			lostByJournald++
		}
	}
	if lostByJournald > 50 {
		t.Errorf("%d entries missing (lost by journald while it stopped?)", lostByJournald)
	}
	if !sort.IntsAreSorted(c.seqs) {
		t.Error("entries out of order")
	}
	t.Logf("%d entries written, %d delivered exactly once, %d lost by journald during its restart; across rotate, vacuum, restart, rotate",
		n, len(have), lostByJournald)
}

// TestLatencyHotAndCold sends failures spaced apart: the first is seen within journald's notification
// delay (cold), the following ones within milliseconds (hot); after Hold the reader blocks again. The
// worst delay of the hot phase is the stuck-tail guard's figure.
func TestLatencyHotAndCold(t *testing.T) {
	ns := testenv.PrivateJournald(t)
	id, m := testRun(t)
	hold := 2 * time.Second
	c := startCollector(t, Options{Directory: ns.Dir, Matches: []Match{m}, Hold: hold}, true)
	s := testenv.StartSender(t, ns.Socket, "sshd")
	// Noise from another process in between, so that the journal changes while the reader is hot.
	noise := testenv.StartSender(t, ns.Socket, "cron")
	const n = 400
	go func() {
		for i := 0; i < n; i++ {
			s.Send(map[string]string{"MESSAGE": fmt.Sprintf("fail %d", i), "GAOLER_TEST": id, "GAOLER_SEQ": strconv.Itoa(i)})
			if i%3 == 0 {
				noise.Send(map[string]string{"MESSAGE": "noise"})
			}
			time.Sleep(time.Duration(5+i%20) * time.Millisecond)
		}
	}()
	c.waitFor(t, n, 20*time.Second)
	c.mu.Lock()
	lat := append([]time.Duration(nil), c.lat...)
	c.mu.Unlock()
	cold := lat[0]
	// Entries written before the first was delivered were read cold, in the same batch; the hot
	// figures are for the entries written after the reader turned hot.
	var hot []time.Duration
	c.mu.Lock()
	for i := 1; i < len(lat); i++ {
		if c.at[i].After(c.seen[0]) {
			hot = append(hot, lat[i])
		}
	}
	c.mu.Unlock()
	sort.Slice(hot, func(i, j int) bool { return hot[i] < hot[j] })
	p50, p99, worst := hot[len(hot)/2], hot[len(hot)*99/100], hot[len(hot)-1]
	t.Logf("cold first entry %v; hot: p50 %v, p99 %v, max %v (%d entries)", cold, p50, p99, worst, len(hot))
	// Generous bounds: CI runs other test packages beside this one on two cores. The benchmarks
	// report the real figures.
	if cold > 2*time.Second {
		t.Errorf("cold latency %v, want about journald's 250-500ms", cold)
	}
	if p99 > 100*time.Millisecond {
		t.Errorf("hot p99 %v, want milliseconds", p99)
	}
	if worst > 500*time.Millisecond {
		t.Errorf("an entry was held back %v (stuck tail?)", worst)
	}
	if hot, _ := c.r.Mode(); !hot {
		t.Error("not hot during the attack")
	}
	time.Sleep(hold + 100*time.Millisecond)
	if hot, _ := c.r.Mode(); hot {
		t.Error("still hot after Hold")
	}
	// Cold again: the next entry waits for journald's notification.
	s.Send(map[string]string{"MESSAGE": "late", "GAOLER_TEST": id, "GAOLER_SEQ": strconv.Itoa(n)})
	c.waitFor(t, n+1, 5*time.Second)
	c.mu.Lock()
	t.Logf("after Hold, cold again: %v", c.lat[n])
	c.mu.Unlock()
}

// TestHeaderWatch follows a private journald's files through their headers: an appended entry moves
// the count at once, and after a rotation and a restart of journald the watch finds the new online
// file by itself.
func TestHeaderWatch(t *testing.T) {
	ns := testenv.PrivateJournald(t)
	id, _ := testRun(t)
	h := newHeaderWatch(ns.Dir, time.Now)
	defer h.close()
	watching := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); !h.watching(); time.Sleep(rescanEvery) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no online journal file found in %s", what, ns.Dir)
			}
		}
	}
	watching("at start")
	h.changed()
	seq := 0
	sees := func(what string) {
		t.Helper()
		testenv.SendManyAsTo(t, ns.Socket, "sshd", entries(id, seq, 1), 0)
		seq++
		deadline := time.Now().Add(2 * time.Second)
		for !h.changed() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: an appended entry did not move the header's count", what)
			}
			time.Sleep(100 * time.Microsecond)
		}
		for h.changed() { // a rescan reports a change too; settle
			time.Sleep(rescanEvery)
		}
	}
	sees("online file")
	ns.Journalctl(t, "--rotate")
	h.changed()
	watching("after --rotate")
	sees("after --rotate")
	ns.Restart(t, nil)
	h.changed()
	watching("after a restart of journald")
	sees("after a restart of journald")
	if len(h.files) == 0 {
		t.Error("no file watched at the end")
	}
}
