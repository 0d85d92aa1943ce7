package fleet

import (
	"sort"
)

// Status is the fleet as `gaoler status` shows it.
type Status struct {
	Host         string
	Connected    bool
	Server       string // the server connected to, or the last one
	Outbox       int    // changes of this host's bucket waiting to be published
	Published    uint64 // bans published since start
	Applied      int    // peers' bans applied here and running
	AppliedTotal uint64 // peers' bans applied since start
	Refused      uint64 // peers' bans refused since start
	Peers        []PeerStatus
}

// PeerStatus is one peer as this host sees it.
type PeerStatus struct {
	Host     string
	Watching bool   // its bucket is being watched
	Applied  int    // its bans applied here and running
	Refused  uint64 // its bans refused since start (ignored here, flooding, malformed)
}

// Status returns the fleet's state now. It never waits on the network.
func (f *Fleet) Status() Status {
	now := f.now()
	st := Status{Host: f.cfg.Host, Outbox: f.out.len()}
	f.mu.Lock()
	defer f.mu.Unlock()
	st.Connected, st.Server, st.Published, st.AppliedTotal = f.connected, f.server, f.published, f.appliedTotal
	for _, p := range f.peers {
		ps := PeerStatus{Host: p.host, Watching: p.watching, Refused: p.refused}
		for k, until := range p.applied {
			if until.After(now) {
				ps.Applied++
			} else {
				delete(p.applied, k)
			}
		}
		st.Applied += ps.Applied
		st.Refused += ps.Refused
		st.Peers = append(st.Peers, ps)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Host < st.Peers[j].Host })
	return st
}
