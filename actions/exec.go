package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

// Placeholders are the names a command's arguments may hold in braces (config checks them). Each
// is replaced where it stands, inside one argument, and the result is never split or parsed again: an
// address or a user name cannot add arguments, options or shell syntax.
var Placeholders = config.PlaceholderNames

// expand replaces the placeholders of arg with value(name).
func expand(arg string, value func(name string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(arg); i++ {
		c := arg[i]
		switch {
		case c == '{' && i+1 < len(arg) && arg[i+1] == '{':
			b.WriteByte('{')
			i++
		case c == '}' && i+1 < len(arg) && arg[i+1] == '}':
			b.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(arg[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed { in %q (write {{ for a literal brace)", arg)
			}
			name := arg[i+1 : i+end]
			v, ok := value(name)
			if !ok {
				return "", fmt.Errorf("unknown placeholder {%s} (known: {%s})", name, strings.Join(Placeholders, "} {"))
			}
			b.WriteString(v)
			i += end
		case c == '}':
			return "", fmt.Errorf("lone } in %q (write }} for a literal brace)", arg)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// Exec runs a program with the event's values in its arguments and the event's JSON on stdin. No shell:
// the program is started directly, in a process group of its own that a timeout kills whole.
type Exec struct {
	Command []string // the program (an absolute path) and its argument templates
	Host    string
	// Env is the program's whole environment (default: a plain PATH).
	Env []string
}

// maxOutput bounds what is kept of a program's output, for the failure message.
const maxOutput = 4 << 10

// Args returns the argument vector for ev: Command with each placeholder replaced in place.
func (x *Exec) Args(ev events.Event) ([]string, error) {
	values := map[string]string{
		"event":     ev.Kind.String(),
		"jail":      ev.Jail,
		"address":   ev.Address(),
		"bantime":   strconv.FormatInt(int64(ev.Expires.Sub(ev.BannedAt).Round(time.Second)/time.Second), 10),
		"expires":   strconv.FormatInt(ev.Expires.Unix(), 10),
		"ban_count": strconv.Itoa(ev.Count),
		"failures":  strconv.Itoa(len(ev.Entries)),
		"hostname":  x.Host,
	}
	args := make([]string, len(x.Command))
	for i, a := range x.Command {
		v, err := expand(a, func(name string) (string, bool) { s, ok := values[name]; return s, ok })
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	return args, nil
}

// Run starts the program and waits for it. A non-zero exit is a failure carrying the end of its
// output; when ctx ends first, the program's process group gets SIGKILL.
func (x *Exec) Run(ctx context.Context, ev events.Event) (Result, error) {
	args, err := x.Args(ev)
	if err != nil {
		return Result{}, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = x.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(append(NewPayload(ev, x.Host).JSON(), '\n'))
	out := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A child left running in the background may hold the output pipe: once the program has exited,
	// wait for the pipe this long only.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The group, not just the program: a script's children (a curl, a sleep) die with it.
		syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			// A child that left the group holds the output pipe open; stop waiting for it.
		}
		return Result{}, fmt.Errorf("%s killed (process group %d): %w", args[0], pgid, ctx.Err())
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Result{}, fmt.Errorf("%s: %v: %s", args[0], ee.ProcessState, strings.TrimSpace(out.String()))
		}
		return Result{}, err
	}
	return Result{Note: "exit status 0"}, nil
}

// Close does nothing: an exec action holds nothing between runs.
func (x *Exec) Close() {}

// limitedBuffer keeps the last max bytes written to it.
type limitedBuffer struct {
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > l.max {
		l.b = append(l.b[:0], l.b[len(l.b)-l.max:]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return oneLine(string(l.b)) }
