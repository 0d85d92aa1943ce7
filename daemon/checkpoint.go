package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gaoler/gaoler/jails"
)

// checkpointFile is the name of the checkpoint inside the state directory.
const checkpointFile = "state.json"

// checkpointVersion is bumped when the file's layout changes incompatibly.
const checkpointVersion = 1

// Checkpoint is what gaolerd persists: the cursor of the last journal entry it processed together with
// the jail state that entry produced. The two are written in one file, atomically, so that after any
// stop (SIGKILL included) the daemon resumes at the entry after Cursor with exactly the windows, bans
// and history that entry left: nothing counted twice, nothing skipped.
type Checkpoint struct {
	Version      int         `json:"version"`
	Cursor       string      `json:"cursor"`
	RealtimeUsec uint64      `json:"realtime_usec"` // the entry's timestamp, for a cursor that was vacuumed
	SavedAt      time.Time   `json:"saved_at"`
	Engine       jails.State `json:"engine"`
	// frozen, when set, is written in Engine's place: the engine's state as Freeze took it under the
	// daemon's lock, merged and encoded by the saver (see jails.Frozen).
	frozen *jails.Frozen
}

// ErrNoCheckpoint is returned by LoadCheckpoint when there is none yet (first start).
var ErrNoCheckpoint = errors.New("no checkpoint")

// LoadCheckpoint reads the checkpoint in dir. A checkpoint that cannot be read or parsed is moved aside
// (to state.json.broken-<time>) and reported in the error, so the daemon starts fresh instead of
// failing in a loop; the caller logs the error.
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	path := filepath.Join(dir, checkpointFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoCheckpoint
	}
	if err == nil {
		var c Checkpoint
		if err = json.Unmarshal(data, &c); err == nil && c.Version != checkpointVersion {
			err = fmt.Errorf("unknown version %d", c.Version)
		}
		if err == nil {
			return &c, nil
		}
	}
	aside := fmt.Sprintf("%s.broken-%s", path, time.Now().UTC().Format("20060102T150405"))
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("checkpoint %s unreadable (%v), and moving it aside failed: %w", path, err, rerr)
	}
	return nil, fmt.Errorf("checkpoint %s unreadable (%v); moved to %s, starting fresh", path, err, aside)
}

// Save writes c to dir atomically: a temporary file is written and fsynced, renamed over the old
// checkpoint, and the directory is fsynced so the rename itself survives a power cut.
func (c *Checkpoint) Save(dir string) error {
	c.Version = checkpointVersion
	tmp, err := os.CreateTemp(dir, checkpointFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err = c.writeJSON(tmp); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, checkpointFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeJSON writes c as encoding/json would encode it (LoadCheckpoint decodes it with encoding/json),
// through jails.State's reflection-free encoder, a chunk at a time.
func (c *Checkpoint) writeJSON(w io.Writer) error {
	if _, err := w.Write(c.appendHead(nil)); err != nil {
		return err
	}
	write := c.Engine.WriteJSON
	if c.frozen != nil {
		write = c.frozen.WriteJSON
	}
	if err := write(w); err != nil {
		return err
	}
	_, err := w.Write([]byte{'}'})
	return err
}

// appendHead appends c's JSON up to its engine state.
func (c *Checkpoint) appendHead(b []byte) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(c.Version), 10)
	b = append(b, `,"cursor":`...)
	b = jails.AppendJSONString(b, c.Cursor)
	b = append(b, `,"realtime_usec":`...)
	b = strconv.AppendUint(b, c.RealtimeUsec, 10)
	b = append(b, `,"saved_at":`...)
	b = jails.AppendJSONTime(b, c.SavedAt)
	return append(b, `,"engine":`...)
}

// save takes the checkpoint, the last processed cursor with the state it produced, and hands it to
// the saver, which writes it on its own goroutine; it returns the checkpoint's number (see saveNow).
// Taking it costs the lock's holder the same with 100,000 bans as with none (jails.Frozen): the
// sorting and encoding are the saver's.
func (d *Daemon) save() uint64 {
	cp := &Checkpoint{Cursor: d.cursor, RealtimeUsec: d.realtimeUsec, SavedAt: d.now(), frozen: d.engine.Freeze()}
	n := d.saver.put(cp)
	d.dirty = false
	d.lastSave = d.now()
	return n
}

// saveNow saves and waits until the checkpoint is on disk: for what an admin is told is done (a manual
// ban or unban, a reload) and at stop. A write that failed (logged by the saver) leaves the state dirty,
// to be saved again.
func (d *Daemon) saveNow() {
	if err := d.saver.wait(d.save()); err != nil {
		d.dirty = true
	}
}
