package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/firewall"
	"github.com/gaoler/gaoler/internal/testenv"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/journal"
	"github.com/gaoler/gaoler/metrics"
)

// fakeFirewall keeps the elements a kernel would hold; failFlushes makes that many Flushes fail, as a
// kernel that refuses a transaction does (the queued changes stay queued).
type fakeFirewall struct {
	mu          sync.Mutex
	queued      []string
	kernel      map[string]bool
	failFlushes int
	flushes     int
}

func newFakeFirewall() *fakeFirewall { return &fakeFirewall{kernel: map[string]bool{}} }

func (f *fakeFirewall) Ban(jail string, p netip.Prefix, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, "+"+jail+" "+p.String())
	return nil
}

func (f *fakeFirewall) Unban(jail string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, "-"+jail+" "+p.String())
	return nil
}

func (f *fakeFirewall) Setup([]firewall.JailRules) error { return nil }

func (f *fakeFirewall) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
	if f.failFlushes > 0 {
		f.failFlushes--
		return errors.New("fake: transaction refused")
	}
	for _, q := range f.queued {
		f.kernel[q[1:]] = q[0] == '+'
	}
	f.queued = nil
	return nil
}

func (f *fakeFirewall) inKernel(jail, addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kernel[jail+" "+netip.PrefixFrom(netip.MustParseAddr(addr), 32).String()]
}

// Elements lists what the kernel holds for the jail (a restart finds what the last run left).
func (f *fakeFirewall) Elements(jail string) ([]firewall.Element, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []firewall.Element
	for k, in := range f.kernel {
		if j, p, _ := strings.Cut(k, " "); in && j == jail {
			out = append(out, firewall.Element{Prefix: netip.MustParsePrefix(p)})
		}
	}
	return out, nil
}
func (f *fakeFirewall) Heal(context.Context, func(int)) {}
func (f *fakeFirewall) Close() error                    { return nil }

// recorder is a Hub subscriber that keeps what it heard.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) handle(ev events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) got() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// testDaemon builds a daemon around a fake firewall, with the engine configured from cfgText, and
// a recorder on its Hub. It is not running: the test drives handleBatch and the timers itself.
func testDaemon(t *testing.T, cfgText string) (*Daemon, *fakeFirewall, *recorder) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse(dir+"/gaoler.toml", fmt.Sprintf("[daemon]\nstate_directory = %q\nfirewall = \"none\"\n%s", dir, cfgText))
	if err != nil {
		t.Fatal(err)
	}
	fw := newFakeFirewall()
	d := &Daemon{opts: Options{CheckpointInterval: time.Hour}, cfg: cfg, log: NewTextLogger(io.Discard),
		notify: func(string) {}, pid: "1", lastSave: time.Now(), hub: events.NewHub(), preCrash: map[banKey]bool{},
		tally: metrics.NewTally()}
	d.fw = fw
	d.now = time.Now
	d.finderErr = errors.New("the tests read no journal") // bans keep the entries the batches gave
	d.engine = jails.NewEngine(d.fw, eventSink{d}, time.Now)
	d.configureJails(cfg)
	d.saver = newSaver(dir, func(err error) { t.Error(err) }, func(string) {})
	t.Cleanup(d.saver.close)
	rec := &recorder{}
	d.hub.Subscribe("test", 100, rec.handle)
	return d, fw, rec
}

// failures returns n sshd failures of addr, a second apart, ending now.
func failures(addr string, n int) []journal.Entry {
	out := make([]journal.Entry, n)
	now := time.Now()
	for i := range out {
		at := now.Add(time.Duration(i-n+1) * time.Second)
		out[i] = *journal.NewEntry(fmt.Sprintf("c%d", i), uint64(at.UnixMicro()),
			"Failed password for root from "+addr+" port 22 ssh2",
			map[string]string{"_UID": "0", "_COMM": "sshd", "_SYSTEMD_UNIT": "ssh.service", "_PID": "4242"})
	}
	return out
}

// handle runs a batch as the reader goroutine does: under mu, announcing after it lets go.
func handle(d *Daemon, batch []journal.Entry) {
	d.mu.Lock()
	d.handleBatch(batch)
	d.unlock()
}

// settle waits until the Hub has handed everything published so far to its subscribers.
func settle(t *testing.T, d *Daemon) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		busy := false
		for _, st := range d.hub.Stats() {
			busy = busy || st.Queued > 0
		}
		if !busy {
			time.Sleep(time.Millisecond) // the event being handled
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the Hub did not deliver its events")
}

const sshdJail = "[jail.sshd]\nenabled = true\nmaxretry = 3\n"

// TestBatchBansAndAnnounces: the failure that reaches maxretry bans in the kernel, and the ban is
// announced on the Hub with its origin, rule and entries.
func TestBatchBansAndAnnounces(t *testing.T) {
	d, fw, rec := testDaemon(t, sshdJail)
	handle(d, failures("192.0.2.7", 3))
	settle(t, d)
	if !fw.inKernel("sshd", "192.0.2.7") {
		t.Fatal("192.0.2.7 is not in the kernel")
	}
	evs := rec.got()
	if len(evs) != 1 {
		t.Fatalf("events = %+v, want one ban", evs)
	}
	ev := evs[0]
	if ev.Kind != events.Ban || ev.Jail != "sshd" || ev.Address() != "192.0.2.7" || ev.Origin.Kind != events.OriginFilter || ev.Rule == "" {
		t.Fatalf("event = %+v", ev)
	}
	if len(ev.Entries) == 0 || ev.Entries[len(ev.Entries)-1].PID != 4242 {
		t.Fatalf("entries = %+v, want the failures with their PID", ev.Entries)
	}
}

// TestFailedFlushAnnouncesNothing: a Flush the kernel refuses announces nothing; the change stays
// queued, the next tick tries again, and the ban is announced once the kernel has it.
func TestFailedFlushAnnouncesNothing(t *testing.T) {
	d, fw, rec := testDaemon(t, sshdJail)
	fw.failFlushes = 1
	handle(d, failures("192.0.2.8", 3))
	settle(t, d)
	if len(rec.got()) != 0 || fw.inKernel("sshd", "192.0.2.8") {
		t.Fatalf("after a failed flush: events %+v, kernel %v; want none", rec.got(), fw.kernel)
	}
	d.mu.Lock()
	due := d.nextTick(time.Now())
	d.mu.Unlock()
	if time.Until(due) > 1500*time.Millisecond {
		t.Errorf("next tick in %v, want a retry within a second", time.Until(due))
	}
	d.mu.Lock()
	d.tick(time.Now())
	d.unlock()
	settle(t, d)
	if !fw.inKernel("sshd", "192.0.2.8") {
		t.Fatal("the retry did not put the ban in the kernel")
	}
	if evs := rec.got(); len(evs) != 1 || evs[0].Kind != events.Ban {
		t.Fatalf("after the retry: events %+v, want the ban", evs)
	}
}

// TestReDerivedBanIsRestored: a ban the kernel held before the start (a crash came between the
// kernel and the checkpoint), decided again from the entries read since, is a restoration: its event
// has OriginRestored.
func TestReDerivedBanIsRestored(t *testing.T) {
	d, fw, rec := testDaemon(t, sshdJail)
	d.preCrash[banKey{"sshd", "192.0.2.9/32"}] = true
	d.start = time.Now().Add(time.Hour) // not caught up yet
	handle(d, failures("192.0.2.9", 3))
	handle(d, failures("192.0.2.10", 3))
	settle(t, d)
	if !fw.inKernel("sshd", "192.0.2.9") || !fw.inKernel("sshd", "192.0.2.10") {
		t.Fatal("bans missing from the kernel")
	}
	evs := rec.got()
	if len(evs) != 2 || evs[0].Address() != "192.0.2.9" || evs[0].Origin.Kind != events.OriginRestored ||
		evs[1].Address() != "192.0.2.10" || evs[1].Origin.Kind != events.OriginFilter {
		t.Fatalf("events = %+v, want 192.0.2.9 restored, then the new ban of 192.0.2.10", evs)
	}
}

// runLoop runs d's main loop until the test ends, with its plugins started.
func runLoop(t *testing.T, d *Daemon, plugins ...Plugin) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d.ctx = ctx
	d.reqs = make(chan func())
	d.lists = make(chan struct{}, 1)
	d.kick = make(chan struct{}, 1)
	d.readerDone = make(chan error, 1)
	d.opts.Plugins = plugins
	d.mu.Lock()
	d.startPlugins()
	done := make(chan error, 1)
	go func() {
		err := d.loop(ctx)
		d.shutDown()
		done <- err
	}()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestPluginBansAsPeer: a plugin applies a peer's ban and lifts it through the Host; both are
// announced with the peer as origin, and the Host refuses a prefix that holds an ignored address.
func TestPluginBansAsPeer(t *testing.T) {
	d, fw, _ := testDaemon(t, sshdJail+"ignoreip = [\"198.51.100.0/24\"]\n")
	var host *Host
	heard := &recorder{}
	var ran bool
	stop := runLoop(t, d, Plugin{Name: "fleet", Start: func(ctx context.Context, h *Host) error {
		host = h
		h.Subscribe(10, heard.handle)
		h.Go(func() { <-ctx.Done(); ran = true })
		return nil
	}})
	peer := events.Origin{Kind: events.OriginPeer, Peer: "h2"}
	p := netip.MustParsePrefix("192.0.2.20/32")
	b, err := host.Ban(BanRequest{Jail: "sshd", Prefix: p, Expires: time.Now().Add(time.Hour), Count: 3, Origin: peer})
	if err != nil || b.Count != 3 || b.Origin != peer {
		t.Fatalf("Ban = %+v, %v", b, err)
	}
	if !fw.inKernel("sshd", "192.0.2.20") {
		t.Fatal("the peer's ban is not in the kernel")
	}
	if _, err := host.Ban(BanRequest{Jail: "sshd", Prefix: netip.MustParsePrefix("198.51.0.0/16"), Origin: peer}); !errors.Is(err, jails.ErrIgnored) {
		t.Fatalf("Ban of a prefix holding ignored addresses: %v, want ErrIgnored", err)
	}
	bans, err := host.Bans("sshd")
	if err != nil || len(bans) != 1 || bans[0].Prefix != p {
		t.Fatalf("Bans = %+v, %v", bans, err)
	}
	if _, err := host.Unban("sshd", p, peer); err != nil {
		t.Fatal(err)
	}
	st, err := host.Stats()
	if err != nil || len(st) != 1 || st[0].Jail != "sshd" || st[0].TotalBanned != 1 || st[0].CurrentlyBanned != 0 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Error("the plugin's goroutine was not waited for")
	}
	evs := heard.got()
	if len(evs) != 2 || evs[0].Kind != events.Ban || evs[0].Origin != peer || evs[1].Kind != events.Unban ||
		evs[1].Origin != peer || evs[1].Reason != "peer" {
		t.Fatalf("events = %+v", evs)
	}
	if _, err := host.Ban(BanRequest{Jail: "sshd", Prefix: p, Origin: peer}); !errors.Is(err, ErrStopping) {
		t.Fatalf("Ban after stop: %v, want ErrStopping", err)
	}
}

// TestShutdownRefusesLateBan: a bus Ban that arrives while the daemon stops gets the error.
func TestShutdownRefusesLateBan(t *testing.T) {
	d, _, _ := testDaemon(t, sshdJail)
	stop := runLoop(t, d)
	if _, err := (backend{d}).Ban("sshd", "192.0.2.30", 0); err != nil {
		t.Fatalf("Ban while running: %v", err)
	}
	stop()
	for name, call := range map[string]func() error{
		"Ban":      func() error { _, err := (backend{d}).Ban("sshd", "192.0.2.31", 0); return err },
		"Unban":    func() error { _, err := (backend{d}).Unban("sshd", "192.0.2.30"); return err },
		"UnbanAll": func() error { _, err := (backend{d}).UnbanAll("sshd"); return err },
		"ListBans": func() error { _, err := (backend{d}).ListBans("sshd"); return err },
		"Jail":     func() error { _, err := (backend{d}).Jail("sshd"); return err },
		"Reload":   func() error { return (backend{d}).Reload() },
	} {
		if err := call(); !errors.Is(err, ErrStopping) {
			t.Errorf("%s after stop: %v, want ErrStopping", name, err)
		}
	}
}

func (f *fakeFirewall) Counters() (map[string]firewall.Counter, error) {
	return map[string]firewall.Counter{}, nil
}

// TestReloadKeepsState: a reload that changes a jail's settings keeps its bans and failure windows,
// and one whose configuration does not load keeps the running one.
func TestReloadKeepsState(t *testing.T) {
	d, fw, rec := testDaemon(t, sshdJail)
	d.opts.ConfigPath = d.cfg.Files[0]
	handle(d, failures("192.0.2.40", 3))     // banned
	handle(d, failures("192.0.2.41", 2)[:2]) // two failures counted
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(d.opts.ConfigPath, []byte(fmt.Sprintf("[daemon]\nstate_directory = %q\nfirewall = \"none\"\n%s",
			d.cfg.Daemon.StateDirectory, text)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(sshdJail + "bantime = \"2h\"\n")
	d.mu.Lock()
	err := d.reload()
	d.unlock()
	if err != nil {
		t.Fatal(err)
	}
	if bt := d.jailConfig("sshd").Settings.BanTime; bt != 2*time.Hour {
		t.Fatalf("bantime after reload %v", bt)
	}
	if !fw.inKernel("sshd", "192.0.2.40") || len(d.engine.Bans("sshd")) != 1 {
		t.Fatalf("the ban did not survive the reload: %v", d.engine.Bans("sshd"))
	}
	handle(d, failures("192.0.2.41", 1)) // the third failure, counted with the two before the reload
	if !fw.inKernel("sshd", "192.0.2.41") {
		t.Fatal("the failures counted before the reload were forgotten")
	}
	settle(t, d)
	if evs := rec.got(); len(evs) != 2 || evs[1].Address() != "192.0.2.41" || evs[1].Expires.Sub(evs[1].BannedAt).Round(time.Minute) != 2*time.Hour {
		t.Fatalf("events %+v, want the second ban for the new bantime", evs)
	}

	write("[jail.sshd]\nenabled = maybe\n")
	d.mu.Lock()
	err = d.reload()
	d.unlock()
	var cerr *ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("reload of a broken config: %v, want a ConfigError", err)
	}
	if d.jailConfig("sshd") == nil || len(d.engine.Bans("sshd")) != 2 {
		t.Fatal("a broken config replaced the running one")
	}
}

// TestBanEntriesFromTheJournal: the entries behind a live ban are announced with the messages and
// cursors read back from the journal, where the failure windows kept only their times and PIDs.
func TestBanEntriesFromTheJournal(t *testing.T) {
	jdir := t.TempDir()
	batch := failures("192.0.2.50", 3)
	for i := range batch {
		batch[i] = *journal.NewEntry("", batch[i].Realtime, batch[i].Message,
			map[string]string{"_UID": "0", "_COMM": "sshd", "_SYSTEMD_UNIT": "ssh.service", "_PID": fmt.Sprint(700 + i)})
	}
	var export strings.Builder
	for _, e := range batch {
		export.WriteString(testenv.ExportEntry(e.Realtime, "_UID=0", "_COMM=sshd", "_PID="+e.Field("_PID"), "MESSAGE="+e.Message))
	}
	testenv.ExportToJournalDir(t, jdir, export.String())

	d, _, rec := testDaemon(t, sshdJail)
	d.cfg.Journal.Directory, d.finderErr = jdir, nil
	t.Cleanup(func() {
		if d.finder != nil {
			d.finder.Close()
		}
	})
	for i := range batch {
		handle(d, batch[i:i+1]) // one entry a batch, as live failures come: none has a cursor
	}
	settle(t, d)
	evs := rec.got()
	if len(evs) != 1 || len(evs[0].Entries) != 3 {
		t.Fatalf("events %+v", evs)
	}
	for i, e := range evs[0].Entries {
		if e.Message != batch[i].Message || e.PID != 700+i || !strings.HasPrefix(e.Cursor, "s=") {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	if b := d.engine.Bans("sshd"); len(b) != 1 || b[0].Entries[0].Cursor != evs[0].Entries[0].Cursor {
		t.Errorf("the engine's ban was not completed too: %+v", b)
	}
}

// fakeJournal hands the daemon the batches it is given, then waits to be stopped.
type fakeJournal struct {
	batches chan []journal.Entry
	opened  chan journal.Options
}

func (j *fakeJournal) open(o journal.Options) (JournalReader, error) {
	j.opened <- o
	return j, nil
}

func (j *fakeJournal) Run(ctx context.Context, fn func([]journal.Entry) uint64) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b := <-j.batches:
			fn(b)
		}
	}
}

func (j *fakeJournal) Mode() (bool, time.Duration) { return false, 0 }
func (j *fakeJournal) Busy() time.Duration         { return 0 }
func (j *fakeJournal) SetNearBan(bool, bool)       {}
func (j *fakeJournal) Close() error                { return nil }

// syncBuffer is a log a test reads while the daemon writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRunRecoversSilently runs the whole daemon, without root, on its seams: the kernel holds a ban
// that the crashed run had not checkpointed; the entries read again re-derive it, and it is a
// restoration (OriginRestored, no ban entry), while a new ban from the same batch is announced.
func TestRunRecoversSilently(t *testing.T) {
	dir := t.TempDir()
	cfgPath := dir + "/gaoler.toml"
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("[daemon]\nstate_directory = %q\n%s", dir+"/state", sshdJail)), 0o600); err != nil {
		t.Fatal(err)
	}
	fw := newFakeFirewall()
	fw.kernel["sshd 192.0.2.60/32"] = true // left by the crashed run, not in any checkpoint
	jr := &fakeJournal{batches: make(chan []journal.Entry, 4), opened: make(chan journal.Options, 4)}
	var log syncBuffer
	var states []string
	var statesMu sync.Mutex
	heard := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Log: NewTextLogger(&log), Firewall: fw, OpenJournal: jr.open,
			Bus:    func() (*dbus.Conn, error) { return nil, errors.New("no bus in this test") },
			Notify: func(s string) { statesMu.Lock(); states = append(states, s); statesMu.Unlock() },
			Plugins: []Plugin{{Name: "test", Start: func(ctx context.Context, h *Host) error {
				h.Subscribe(100, heard.handle)
				return nil
			}}}})
	}()
	select {
	case <-jr.opened:
	case err := <-done:
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	jr.batches <- append(failures("192.0.2.60", 3), failures("192.0.2.61", 3)...)
	for i := 0; i < 1000 && len(heard.got()) < 2; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	evs := heard.got()
	if len(evs) != 2 || evs[0].Address() != "192.0.2.60" || evs[0].Origin.Kind != events.OriginRestored ||
		evs[1].Address() != "192.0.2.61" || evs[1].Origin.Kind != events.OriginFilter {
		t.Fatalf("events %+v, want 192.0.2.60 restored and 192.0.2.61 new\n%s", evs, log.String())
	}
	out := log.String()
	if strings.Contains(out, "Banned 192.0.2.60 ") || !strings.Contains(out, "Banned 192.0.2.61 ") || !strings.Contains(out, "Stopped:") {
		t.Errorf("log:\n%s", out)
	}
	if !fw.inKernel("sshd", "192.0.2.60") || !fw.inKernel("sshd", "192.0.2.61") {
		t.Error("bans missing from the kernel")
	}
	statesMu.Lock()
	defer statesMu.Unlock()
	if len(states) == 0 || states[0] != "READY=1" || !slices.Contains(states, "STOPPING=1") {
		t.Errorf("sd_notify states %q", states)
	}
	if _, err := LoadCheckpoint(dir + "/state"); err != nil {
		t.Errorf("no checkpoint after the stop: %v", err)
	}
}
