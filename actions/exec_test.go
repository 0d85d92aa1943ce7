package actions

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/events"
)

// The test binary doubles as the hook program: with GAOLER_TEST_HOOK set to a file, it writes its
// argv (NUL-separated) and its stdin there and exits.
func TestMain(m *testing.M) {
	if out := os.Getenv("GAOLER_TEST_HOOK"); out != "" {
		stdin, _ := readAll(os.Stdin)
		rec := strings.Join(os.Args[1:], "\x00") + "\x00\x00" + string(stdin)
		os.WriteFile(out, []byte(rec), 0o600)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func readAll(f *os.File) ([]byte, error) {
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return b, nil
		}
	}
}

// hostileUser is a user name as an attacker would pick it to break out of a shell command line.
const hostileUser = "root'; touch /tmp/pwned; echo \"$(id)\" `id` && rm -rf / #\n|| ${IFS} {address} {{x}}"

func banEvent(addr string) events.Event {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	return events.Event{
		Kind: events.Ban, Jail: "sshd", Prefix: netip.MustParsePrefix(addr + "/32"),
		BannedAt: at, Expires: at.Add(10 * time.Minute), Count: 2,
		Origin: events.Origin{Kind: events.OriginFilter}, Rule: "invalid-user",
		Entries: []events.Entry{
			{Time: at.Add(-2 * time.Second), Cursor: "s=1;i=1", Message: "Invalid user " + hostileUser + " from " + addr + " port 22", PID: 7},
			{Time: at.Add(-time.Second), Cursor: "s=1;i=2", Message: "Failed password for invalid user " + hostileUser + " from " + addr + " port 22 ssh2", PID: 7},
		},
	}
}

// recordingLog keeps the outcomes reported.
type recordingLog struct {
	mu      sync.Mutex
	entries []logged
}

type logged struct {
	id     string
	fields map[string]string
	msg    string
}

func (r *recordingLog) Event(id string, _ journal.Priority, fields map[string]string, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, logged{id, fields, sprintf(format, args...)})
}

func (r *recordingLog) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		out = append(out, e.id)
	}
	return out
}

func (r *recordingLog) wait(t *testing.T, id string, n int) []logged {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		var got []logged
		for _, e := range r.entries {
			if e.id == id {
				got = append(got, e)
			}
		}
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %d entries %s after 30s; have %v", n, id, r.ids())
	return nil
}

func TestExecPassesHostileTextAsData(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rec")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	x := &Exec{
		Command: []string{self, "{event}", "{jail}", "{address}", "ip={address};n={ban_count}", "{bantime}", "{expires}", "{failures}", "{hostname}", "{{literal}}", "$(id)"},
		Host:    "host.example.org",
		Env:     []string{"GAOLER_TEST_HOOK=" + out},
	}
	ev := banEvent("192.0.2.7")
	if _, err := x.Run(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	argv, stdin, _ := strings.Cut(string(rec), "\x00\x00")
	wantArgv := []string{"ban", "sshd", "192.0.2.7", "ip=192.0.2.7;n=2", "600", strconv.FormatInt(ev.Expires.Unix(), 10), "2", "host.example.org", "{literal}", "$(id)"}
	if got := strings.Split(argv, "\x00"); !reflect.DeepEqual(got, wantArgv) {
		t.Fatalf("argv = %q, want %q", got, wantArgv)
	}
	want := `{"event":"ban","jail":"sshd","address":"192.0.2.7","banned_at":"2026-12-03T10:00:00Z","expires":"2026-12-03T10:10:00Z","bantime":600,"ban_count":2,"host":"host.example.org","origin":"filter","rule":"invalid-user","entries":[` +
		`{"time":"2026-12-03T09:59:58Z","realtime_usec":` + strconv.FormatInt(ev.Entries[0].Time.UnixMicro(), 10) + `,"cursor":"s=1;i=1","message":` + jsonString(ev.Entries[0].Message) + `},` +
		`{"time":"2026-12-03T09:59:59Z","realtime_usec":` + strconv.FormatInt(ev.Entries[1].Time.UnixMicro(), 10) + `,"cursor":"s=1;i=2","message":` + jsonString(ev.Entries[1].Message) + `}]}` + "\n"
	if stdin != want {
		t.Fatalf("stdin =\n%s\nwant\n%s", stdin, want)
	}
	var p Payload
	if err := json.Unmarshal([]byte(stdin), &p); err != nil || p.Entries[1].Message != ev.Entries[1].Message {
		t.Fatalf("stdin does not decode to the entries: %v %+v", err, p)
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Fatal("/tmp/pwned exists: the user name ran as a command")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestExecFailureCarriesOutput(t *testing.T) {
	x := &Exec{Command: []string{"/bin/sh", "-c", "echo nope >&2; exit 3"}}
	_, err := x.Run(context.Background(), banEvent("192.0.2.9"))
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want exit status 3 and the program's output", err)
	}
}

// A hanging action is killed, its whole process group with it, at its timeout; meanwhile another
// action of the same hub runs every event at once, and Publish never waits.
func TestHangingExecIsKilledAndDelaysNothing(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	hang := &Exec{Command: []string{"/bin/sh", "-c", `sleep 300 & echo $$ $! > "$0"; wait`, pids}}
	log := &recordingLog{}
	set := NewSet(&Reporter{Log: log})
	fast := &funcAction{}
	all := map[events.Kind]bool{events.Ban: true}
	set.Update([]Spec{
		{Name: "hang", Type: "exec", Events: all, Jails: map[string]int{"sshd": 5}, Timeout: 500 * time.Millisecond, Queue: 2, Action: hang},
		{Name: "fast", Type: "exec", Events: all, Jails: map[string]int{"sshd": 5}, Action: fast},
	})
	start := time.Now()
	set.Handle(banEvent("192.0.2.1"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(pids); err == nil {
			break // the hanging action runs the first event
		}
		if time.Now().After(deadline) {
			t.Fatal("the hanging action did not start")
		}
	}
	start = time.Now()
	for i := 2; i <= 5; i++ {
		set.Handle(banEvent("192.0.2." + strconv.Itoa(i)))
	}

	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("publishing 4 events took %v behind a hanging action", d)
	}
	got := log.wait(t, events.MsgActionSent, 5)
	for _, e := range got {
		if e.fields[events.FieldAction] != "fast" {
			t.Fatalf("sent entry from %q", e.fields[events.FieldAction])
		}
	}
	timedOut := log.wait(t, events.MsgActionTimedOut, 1)
	if timedOut[0].fields[events.FieldAddress] != "192.0.2.1" {
		t.Fatalf("timed out entry %+v", timedOut[0])
	}
	rec, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(rec)) {
		pid, _ := strconv.Atoi(f)
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("process %d of the killed group still runs", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The hung action's queue held 2 of the 4 events behind the first; the others were dropped.
	dropped := log.wait(t, events.MsgActionDropped, 1)
	if dropped[0].fields[events.FieldDropped] != "2" {
		t.Fatalf("dropped entry %+v, want 2 dropped", dropped[0])
	}
	set.CloseWithin(0) // cancels the queued runs
}

// funcAction counts its runs.
type funcAction struct {
	mu   sync.Mutex
	runs []events.Event
	fn   func(ctx context.Context, ev events.Event) (Result, error)
}

func (f *funcAction) Run(ctx context.Context, ev events.Event) (Result, error) {
	f.mu.Lock()
	f.runs = append(f.runs, ev)
	f.mu.Unlock()
	if f.fn != nil {
		return f.fn(ctx, ev)
	}
	return Result{Note: "ok"}, nil
}

func (f *funcAction) Close() {}

func TestSetSkipsRestoredOtherJailsAndKinds(t *testing.T) {
	set := NewSet(nil)
	f := &funcAction{}
	set.Update([]Spec{{Name: "a", Type: "exec", Events: map[events.Kind]bool{events.Ban: true}, Jails: map[string]int{"sshd": 1}, Action: f}})
	ev := banEvent("192.0.2.7")
	restored := ev
	restored.Origin = events.Origin{Kind: events.OriginRestored}
	other := ev
	other.Jail = "nginx"
	unban := ev
	unban.Kind = events.Unban
	for _, e := range []events.Event{restored, other, unban, ev} {
		set.Handle(e)
	}
	set.Close()
	if len(f.runs) != 1 || f.runs[0].Jail != "sshd" || f.runs[0].Kind != events.Ban || f.runs[0].Origin.Kind != events.OriginFilter {
		t.Fatalf("runs = %+v, want the one new sshd ban", f.runs)
	}
	if len(f.runs[0].Entries) != 1 || f.runs[0].Entries[0].Cursor != "s=1;i=2" {
		t.Fatalf("entries = %+v, want the last 1 (maxretry)", f.runs[0].Entries)
	}
}
