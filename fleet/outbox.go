package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// outboxFile is the outbox's name in the state directory.
const outboxFile = "fleet-outbox.json"

// op is one change of this host's bucket waiting to be published: a put (a ban, with its value and
// when it ends) or a purge (an unban). Only the latest op of a key matters, so the outbox keeps one
// per key.
type op struct {
	Key     string    `json:"key"`
	Purge   bool      `json:"purge,omitempty"`
	Value   Value     `json:"value,omitzero"`
	Expires time.Time `json:"expires,omitzero"` // a put: the ban's end, by this host's clock
	Seq     uint64    `json:"seq"`
}

// outbox holds the changes of this host's bucket not yet published, in the order they were made, and
// saves them in the state directory so that a restart loses none. Its methods are safe for concurrent
// use: the Hub's goroutine adds, the publisher takes.
type outbox struct {
	mu    sync.Mutex
	path  string // "" keeps it in memory only
	ops   map[string]*op
	seq   uint64
	dirty bool
	wake  chan struct{} // the publisher's
}

// openOutbox loads the outbox saved in dir ("" for none). A file that cannot be parsed is moved
// aside; the reconciliation at the next connection republishes what it held.
func openOutbox(dir string) (*outbox, error) {
	o := &outbox{ops: map[string]*op{}, wake: make(chan struct{}, 1)}
	if dir == "" {
		return o, nil
	}
	o.path = filepath.Join(dir, outboxFile)
	data, err := os.ReadFile(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		return o, nil
	}
	var ops []*op
	if err == nil {
		err = json.Unmarshal(data, &ops)
	}
	if err != nil {
		aside := o.path + ".broken"
		os.Rename(o.path, aside)
		return o, fmt.Errorf("fleet outbox %s unreadable (%v); moved to %s, the bucket is reconciled at the next connection", o.path, err, aside)
	}
	for _, p := range ops {
		o.ops[p.Key] = p
		o.seq = max(o.seq, p.Seq)
	}
	return o, nil
}

// put queues p, replacing what was queued for its key.
func (o *outbox) put(p op) {
	o.mu.Lock()
	o.seq++
	p.Seq = o.seq
	o.ops[p.Key] = &p
	o.dirty = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// next returns the oldest queued op, or false.
func (o *outbox) next() (op, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first *op
	for _, p := range o.ops {
		if first == nil || p.Seq < first.Seq {
			first = p
		}
	}
	if first == nil {
		return op{}, false
	}
	return *first, true
}

// done removes p unless its key was changed again since next returned it.
func (o *outbox) done(p op) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if q := o.ops[p.Key]; q != nil && q.Seq == p.Seq {
		delete(o.ops, p.Key)
		o.dirty = true
	}
}

// len is how many changes wait.
func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.ops)
}

// save writes the outbox if it changed since the last save: a temporary file, fsynced, renamed
// over the old one.
func (o *outbox) save() error {
	o.mu.Lock()
	if !o.dirty || o.path == "" {
		o.mu.Unlock()
		return nil
	}
	ops := make([]*op, 0, len(o.ops))
	for _, p := range o.ops {
		c := *p
		ops = append(ops, &c)
	}
	o.dirty = false
	o.mu.Unlock()
	sort.Slice(ops, func(i, j int) bool { return ops[i].Seq < ops[j].Seq })
	data, err := json.Marshal(ops)
	if err == nil {
		err = writeAtomic(o.path, data)
	}
	if err != nil {
		o.mu.Lock()
		o.dirty = true
		o.mu.Unlock()
		return fmt.Errorf("fleet outbox: %w", err)
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}
