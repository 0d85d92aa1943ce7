package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// appliedFile keeps, in the state directory, which peers' bans this host applied and until when:
// after a restart the fleet still knows them for its peers' own (never to publish as this host's,
// even where the daemon's state lost a ban's origin) and can lift them when their peer did.
const appliedFile = "fleet-applied.json"

// loadApplied reads the record of applied peers' bans into f.peers. The caller holds no lock; it runs
// before the fleet's goroutines. A missing or broken file is an empty record.
func (f *Fleet) loadApplied(dir string) {
	if dir == "" {
		return
	}
	f.appliedPath = filepath.Join(dir, appliedFile)
	data, err := os.ReadFile(f.appliedPath)
	if err != nil {
		return
	}
	var rec map[string]map[string]time.Time
	if json.Unmarshal(data, &rec) != nil {
		return
	}
	now := f.now()
	for host, keys := range rec {
		p := f.peerOf(host)
		for k, until := range keys {
			if until.After(now) {
				p.applied[k] = until
			}
		}
	}
}

// saveApplied writes the record if it changed since the last save.
func (f *Fleet) saveApplied() error {
	f.mu.Lock()
	if !f.appliedDirty || f.appliedPath == "" {
		f.mu.Unlock()
		return nil
	}
	rec := make(map[string]map[string]time.Time, len(f.peers))
	now := f.now()
	for host, p := range f.peers {
		keys := map[string]time.Time{}
		for k, until := range p.applied {
			if until.After(now) {
				keys[k] = until
			}
		}
		if len(keys) > 0 {
			rec[host] = keys
		}
	}
	f.appliedDirty = false
	f.mu.Unlock()
	data, err := json.Marshal(rec)
	if err == nil {
		err = writeAtomic(f.appliedPath, data)
	}
	if err != nil {
		f.mu.Lock()
		f.appliedDirty = true
		f.mu.Unlock()
		return fmt.Errorf("fleet: %s: %w", f.appliedPath, err)
	}
	return nil
}

// appliedFrom returns the peer key was applied from and is still running for, or "".
func (f *Fleet) appliedFrom(key string) string {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for host, p := range f.peers {
		if until, ok := p.applied[key]; ok && until.After(now) {
			return host
		}
	}
	return ""
}
