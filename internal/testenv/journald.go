package testenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Paths of the journald that Journald starts when none is running.
const (
	JournalSocket   = "/run/systemd/journal/socket"
	journaldBinary  = "/lib/systemd/systemd-journald"
	journalRemote   = "/lib/systemd/systemd-journal-remote"
	journaldDropIn  = "/etc/systemd/journald.conf.d/50-gaoler-tests.conf"
	journaldLock    = "/run/gaoler-testenv-journald.lock"
	journaldPidFile = "/run/gaoler-testenv-journald.pid"
	senderEnv       = "GAOLER_TESTENV_JOURNAL_SENDER"
	senderSocketEnv = "GAOLER_TESTENV_JOURNAL_SOCKET"
)

// init turns a test binary started by SendAs into the sender: it reads entries from stdin, sends each
// to journald's socket, and exits. Running as a copy of the test binary under the name it was asked for
// is what makes journald record that name as _COMM (from /proc/PID/comm) with the test's _UID.
func init() {
	if os.Getenv(senderEnv) != "1" {
		return
	}
	if err := runSender(os.Stdin, os.Getenv(senderSocketEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "journal sender:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Journald requires root and makes sure a journald is running, starting /lib/systemd/systemd-journald
// in the background when /run/systemd/journal/socket does not answer, with a journald.conf.d drop-in
// RateLimitBurst=0 (tests write many entries) and /dev/log linked to its syslog socket. It is safe to
// call from several test processes at once (a lock file serialises them) and leaves journald running.
func Journald(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	_, err := os.Stat(journaldBinary)
	Require(t, err == nil, "needs "+journaldBinary)
	unlock := lockFile(t, journaldLock)
	defer unlock()
	if journaldAnswers() {
		return
	}
	if err := startJournald(); err != nil {
		t.Fatal(err)
	}
}

func journaldAnswers() bool {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: JournalSocket, Net: "unixgram"})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func startJournald() error {
	if err := os.MkdirAll(filepath.Dir(journaldDropIn), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(journaldDropIn, []byte("# Written by gaoler's tests.\n[Journal]\nRateLimitBurst=0\n"), 0o644); err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(journaldBinary)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting journald: %w", err)
	}
	pid := cmd.Process.Pid
	_ = os.WriteFile(journaldPidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644)
	go cmd.Wait() // reap it if it dies while this process lives; otherwise init does
	deadline := time.Now().Add(10 * time.Second)
	for !journaldAnswers() {
		if time.Now().After(deadline) {
			return errors.New("journald did not create " + JournalSocket + " within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = os.Remove("/dev/log")
	if err := os.Symlink("/run/systemd/journal/dev-log", "/dev/log"); err != nil {
		return fmt.Errorf("linking /dev/log: %w", err)
	}
	return nil
}

// RestartJournald stops the journald that Journald started (SIGTERM, as systemctl stop does), calls
// between (which may write entries that nobody receives, or nothing) and starts journald again. It
// fails the test when the running journald was not started by these helpers.
func RestartJournald(t testing.TB, between func()) {
	t.Helper()
	Journald(t)
	unlock := lockFile(t, journaldLock)
	defer unlock()
	b, err := os.ReadFile(journaldPidFile)
	if err != nil {
		t.Fatalf("journald was not started by the test helpers: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", journaldPidFile, err)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != journaldBinary {
		t.Fatalf("process %d is not the journald the helpers started (%q)", pid, exe)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ { // up to 10 s
		if err := syscall.Kill(pid, 0); err != nil {
			break
		}
		if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); bytes.Contains(st, []byte(") Z ")) {
			break // a zombie of this process: gone for journald's purposes
		}
		time.Sleep(20 * time.Millisecond)
	}
	if between != nil {
		between()
	}
	if err := startJournald(); err != nil {
		t.Fatal(err)
	}
}

func lockFile(t testing.TB, path string) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// SendAs sends one entry with fields (MESSAGE, PRIORITY, ...) to journald from a process named comm, so
// that journald records _COMM=comm and the test's _UID (0). It needs Journald.
func SendAs(t testing.TB, comm string, fields map[string]string) {
	t.Helper()
	SendManyAs(t, comm, []map[string]string{fields}, 0)
}

// SendManyAs sends entries in order from one process named comm, waiting interval between two.
func SendManyAs(t testing.TB, comm string, entries []map[string]string, interval time.Duration) {
	t.Helper()
	Journald(t)
	SendManyAsTo(t, JournalSocket, comm, entries, interval)
}

// SendManyAsTo is SendManyAs to the journald listening on socket (see PrivateJournald).
func SendManyAsTo(t testing.TB, socket, comm string, entries []map[string]string, interval time.Duration) {
	t.Helper()
	cmd := senderCommand(t, socket, comm)
	var in bytes.Buffer
	writeEntries(&in, entries, interval)
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sending %d entries as %s: %v: %s", len(entries), comm, err, out)
	}
}

// Sender is a running process named comm that sends entries to journald as the test hands them over.
type Sender struct {
	cmd *exec.Cmd
	in  io.WriteCloser
}

// StartSender starts a sender process named comm sending to socket; Send hands it entries, Close waits
// for it.
func StartSender(t testing.TB, socket, comm string) *Sender {
	t.Helper()
	cmd := senderCommand(t, socket, comm)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Sender{cmd: cmd, in: in}
	t.Cleanup(func() { s.Close() })
	return s
}

// Send hands one entry to the sender, which sends it at once.
func (s *Sender) Send(fields map[string]string) error {
	var b bytes.Buffer
	writeEntries(&b, []map[string]string{fields}, 0)
	_, err := s.in.Write(b.Bytes())
	return err
}

// Close ends the sender and waits for it.
func (s *Sender) Close() error {
	if s.in == nil {
		return nil
	}
	s.in.Close()
	s.in = nil
	return s.cmd.Wait()
}

func senderCommand(t testing.TB, socket, comm string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(comm, '/') || comm == "" || len(comm) > 15 {
		t.Fatalf("SendAs: %q cannot be a process name (at most 15 bytes, no '/')", comm)
	}
	link := filepath.Join(t.TempDir(), comm)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link)
	cmd.Env = append(os.Environ(), senderEnv+"=1", senderSocketEnv+"="+socket)
	return cmd
}

// The sender's input is a sequence of records: 'F' <le64 n> KEY=value (n bytes) adds a field to the
// entry, 'S' sends the entry, 'P' <le64 nanoseconds> pauses.
func writeEntries(w *bytes.Buffer, entries []map[string]string, interval time.Duration) {
	for i, e := range entries {
		if i > 0 && interval > 0 {
			w.WriteByte('P')
			binary.Write(w, binary.LittleEndian, uint64(interval))
		}
		for k, v := range e {
			w.WriteByte('F')
			binary.Write(w, binary.LittleEndian, uint64(len(k)+1+len(v)))
			w.WriteString(k + "=" + v)
		}
		w.WriteByte('S')
	}
}

func runSender(r io.Reader, socket string) error {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReader(r)
	var dgram bytes.Buffer // journald's native protocol, in its binary-safe form for every field
	for {
		op, err := br.ReadByte()
		if err == io.EOF {
			return drained(c)
		}
		if err != nil {
			return err
		}
		switch op {
		case 'P':
			var ns uint64
			if err := binary.Read(br, binary.LittleEndian, &ns); err != nil {
				return err
			}
			time.Sleep(time.Duration(ns))
		case 'S':
			// A journald being restarted refuses entries for a moment: retry (up to 10 s), so
			// that every entry handed over is written.
			for i := 0; ; i++ {
				_, err := c.Write(dgram.Bytes())
				if err == nil {
					break
				}
				if i == 1000 {
					return err
				}
				time.Sleep(10 * time.Millisecond)
				if nc, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"}); err == nil {
					c.Close()
					c = nc
				}
			}
			dgram.Reset()
		case 'F':
			var n uint64
			if err := binary.Read(br, binary.LittleEndian, &n); err != nil {
				return err
			}
			kv := make([]byte, n)
			if _, err := io.ReadFull(br, kv); err != nil {
				return err
			}
			k, v, _ := bytes.Cut(kv, []byte("="))
			dgram.Write(k)
			dgram.WriteByte('\n')
			binary.Write(&dgram, binary.LittleEndian, uint64(len(v)))
			dgram.Write(v)
			dgram.WriteByte('\n')
		default:
			return fmt.Errorf("bad record %q", op)
		}
	}
}

// ExportToJournalDir writes the entries in exportText (journal export format, see
// https://systemd.io/JOURNAL_EXPORT_FORMATS/) as real journal files into dir, with
// systemd-journal-remote. Entries need __REALTIME_TIMESTAMP (and should have __MONOTONIC_TIMESTAMP
// and _BOOT_ID).
func ExportToJournalDir(t testing.TB, dir string, exportText string) {
	t.Helper()
	ExportStreamToJournalDir(t, dir, strings.NewReader(exportText))
}

// ExportStreamToJournalDir is ExportToJournalDir reading the export format from r.
func ExportStreamToJournalDir(t testing.TB, dir string, r io.Reader) {
	t.Helper()
	_, err := os.Stat(journalRemote)
	Require(t, err == nil, "needs "+journalRemote+" (apt install systemd-journal-remote)")
	cmd := exec.Command(journalRemote, "--split-mode=none", "--compress=no",
		"--output="+filepath.Join(dir, "remote.journal"), "-")
	cmd.Stdin = r
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-journal-remote: %v: %s", err, out)
	}
}

// JournaldNS is a private journald instance (a journal namespace, see systemd-journald.service(8)) that
// a test may rotate, vacuum, stop and start without disturbing other tests.
type JournaldNS struct {
	Name   string // the namespace, for journalctl --namespace
	Socket string // its native protocol socket, for SendManyAsTo and StartSender
	Dir    string // its journal files, for Options.Directory
	pid    int
}

// PrivateJournald starts a journald for a fresh namespace (RateLimitBurst=0) and stops it and removes
// its files when the test ends.
func PrivateJournald(t testing.TB) *JournaldNS {
	t.Helper()
	RequireRoot(t)
	_, err := os.Stat(journaldBinary)
	Require(t, err == nil, "needs "+journaldBinary)
	mid, err := os.ReadFile("/etc/machine-id")
	Require(t, err == nil, "needs /etc/machine-id")
	name := fmt.Sprintf("gaoler-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	j := &JournaldNS{
		Name:   name,
		Socket: "/run/systemd/journal." + name + "/socket",
		Dir:    "/var/log/journal/" + strings.TrimSpace(string(mid)) + "." + name,
	}
	conf := "/etc/systemd/journald@" + name + ".conf"
	if err := os.WriteFile(conf, []byte("[Journal]\nRateLimitBurst=0\nStorage=persistent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		j.stop(t)
		os.Remove(conf)
		os.RemoveAll(j.Dir)
		os.RemoveAll("/run/systemd/journal." + name)
		os.RemoveAll("/run/log/journal/" + strings.TrimSpace(string(mid)) + "." + name)
	})
	j.start(t)
	return j
}

func (j *JournaldNS) start(t testing.TB) {
	t.Helper()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	cmd := exec.Command(journaldBinary, j.Name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	j.pid = cmd.Process.Pid
	go cmd.Wait()
	for i := 0; ; i++ {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: j.Socket, Net: "unixgram"})
		if err == nil {
			c.Close()
			break
		}
		if i == 500 {
			t.Fatalf("journald for namespace %s did not start: %v", j.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 500; i++ { // its files appear once it opened them
		if m, _ := filepath.Glob(filepath.Join(j.Dir, "*.journal")); len(m) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("journald for namespace %s created no journal file in %s", j.Name, j.Dir)
}

func (j *JournaldNS) stop(t testing.TB) {
	if j.pid == 0 {
		return
	}
	_ = syscall.Kill(j.pid, syscall.SIGTERM)
	for i := 0; i < 500; i++ {
		if err := syscall.Kill(j.pid, 0); err != nil {
			break
		}
		if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", j.pid)); bytes.Contains(st, []byte(") Z ")) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	j.pid = 0
	os.Remove(j.Socket) // a stale socket would make senders fail differently
}

// Restart stops the namespace's journald (SIGTERM), calls between, and starts it again.
func (j *JournaldNS) Restart(t testing.TB, between func()) {
	t.Helper()
	j.stop(t)
	if between != nil {
		between()
	}
	j.start(t)
}

// Journalctl runs journalctl --namespace=<name> with args (e.g. --rotate, --vacuum-files=1).
func (j *JournaldNS) Journalctl(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("journalctl", append([]string{"--namespace=" + j.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl %v: %v: %s", args, err, out)
	}
}

// drained waits (up to 10 s) until journald has taken every datagram sent on c, then a little longer.
// journald reads the sender's _COMM, _EXE and _SYSTEMD_UNIT from /proc when it receives an entry: a
// sender that exits before that has its entries stored without them, and gaoler's trust rule then
// (rightly) ignores them. SIOCOUTQ on a unix datagram socket counts the bytes the receiver has not
// read yet.
func drained(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	for i := 0; i < 1000; i++ {
		var queued int
		raw.Control(func(fd uintptr) { queued, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
		if err != nil || queued == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // journald looks the sender up right after reading
	return nil
}
