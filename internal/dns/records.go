// Package dns is berth's name server for container networks, a drop-in for
// aardvark-dns: it reads the aardvark configuration directory, answers A,
// AAAA and PTR queries for the containers that share a network with the
// asking container, and forwards everything else to the container's, the
// network's or the host's upstream servers. Only containers on the network
// listening at the asked address (and the host, if enabled) are served;
// everyone else is refused.
//
// Records are immutable snapshots swapped atomically on reload, so queries
// never see a half-loaded configuration and listeners are never restarted
// for addresses that stay.
package dns

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/berthnet/berth/internal/aardvarkconf"
)

// InternalSuffix marks an internal network's file.
const InternalSuffix = aardvarkconf.InternalSuffix

// Network is one network's records.
type Network struct {
	Name       string
	Internal   bool
	BindIPs    []netip.Addr
	DNSServers []netip.Addr
	// byName maps a lower-case name to the containers that carry it.
	byName map[string][]*aardvarkconf.Entry
	// byIP maps a container address to its entry.
	byIP map[netip.Addr]*aardvarkconf.Entry
}

// Snapshot is the whole configuration at one moment.
type Snapshot struct {
	Networks []*Network
	// member maps a container address to the container's ID.
	member map[netip.Addr]string
	// containerNets maps a container ID to every network it is on.
	containerNets map[string][]*Network
	// listener maps a bind address to the networks served there.
	listener map[netip.Addr][]*Network
	// Errors holds the files that could not be loaded; the others load.
	Errors []error
	// serveHost: answer the host itself (see ServeHost).
	serveHost bool
	// replies caches how the UDP path handled each query (cache.go).
	replies replyCache
}

// Load reads every network file in dir. A malformed file, or one that is
// not a regular file or is too large, is reported in Snapshot.Errors (with
// file and line where there is one) and skipped; it does not take the
// other networks down, and never blocks the reader.
func Load(dir string) (*Snapshot, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []*namedFile
	var errs []error
	for _, e := range ents {
		if _, ok := aardvarkconf.NetworkName(e.Name()); !ok || e.IsDir() {
			continue
		}
		parsed, err := aardvarkconf.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, &namedFile{name: e.Name(), f: parsed})
	}
	s := Build(files)
	s.Errors = errs
	return s, nil
}

type namedFile struct {
	name string
	f    *aardvarkconf.File
}

// NamedFile pairs a network file name with its parsed content.
func NamedFile(name string, f *aardvarkconf.File) *namedFile { return &namedFile{name: name, f: f} }

// Build indexes parsed files.
func Build(files []*namedFile) *Snapshot {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	s := &Snapshot{member: map[netip.Addr]string{}, containerNets: map[string][]*Network{}, listener: map[netip.Addr][]*Network{}}
	for _, nf := range files {
		name, _ := aardvarkconf.NetworkName(nf.name)
		n := &Network{
			Name:       strings.TrimSuffix(name, InternalSuffix),
			Internal:   strings.HasSuffix(name, InternalSuffix),
			BindIPs:    nf.f.Header.BindIPs,
			DNSServers: nf.f.Header.DNSServers,
			byName:     map[string][]*aardvarkconf.Entry{},
			byIP:       map[netip.Addr]*aardvarkconf.Entry{},
		}
		for i := range nf.f.Entries {
			e := &nf.f.Entries[i]
			for _, name := range e.Names {
				n.byName[strings.ToLower(name)] = append(n.byName[strings.ToLower(name)], e)
			}
			for _, ip := range append(append([]netip.Addr{}, e.IPv4...), e.IPv6...) {
				n.byIP[ip] = e
				s.member[ip] = e.ID
			}
			s.containerNets[e.ID] = append(s.containerNets[e.ID], n)
		}
		for _, ip := range n.BindIPs {
			s.listener[ip] = append(s.listener[ip], n)
		}
		s.Networks = append(s.Networks, n)
	}
	return s
}

// BindIPs returns every address to listen on.
func (s *Snapshot) BindIPs() []netip.Addr {
	out := make([]netip.Addr, 0, len(s.listener))
	for ip := range s.listener {
		out = append(out, ip)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// Scope is what one requester may see: its networks, and its own upstreams.
// The zero Scope is a refused requester.
type Scope struct {
	// Allowed is false for a requester the server does not serve: it
	// gets REFUSED, no answer and no forwarding.
	Allowed  bool
	Networks []*Network
	// Entry is the requester's own entry when it is a known container.
	Entry *aardvarkconf.Entry
	// Host is set when the requester is the host itself.
	Host bool
}

// ServeHost sets whether the host itself (a loopback source address, or
// one of the addresses the server listens on) is answered.
func (s *Snapshot) ServeHost(on bool) { s.serveHost = on }

// ScopeFor decides whether a query from src that came in on the listening
// address local is served, and from which networks. A container is served
// at the listening address of a network it is on, and sees every network
// it is on (as with aardvark-dns); at any other network's listening
// address it is refused. The host is served the networks listening on
// local when ServeHost is on. Every other source is refused.
func (s *Snapshot) ScopeFor(src, local netip.Addr) Scope {
	src, local = src.Unmap(), local.Unmap()
	served := s.listener[local]
	for _, n := range served {
		if e := n.byIP[src]; e != nil {
			return Scope{Allowed: true, Networks: s.containerNets[e.ID], Entry: e}
		}
	}
	if id, ok := s.member[src]; ok {
		// The container's address on another of its networks.
		nets := s.containerNets[id]
		for _, n := range nets {
			if slices.Contains(served, n) {
				return Scope{Allowed: true, Networks: nets, Entry: entryOf(nets, src)}
			}
		}
		return Scope{}
	}
	if s.serveHost && len(served) > 0 && (src.IsLoopback() || s.listener[src] != nil) {
		return Scope{Allowed: true, Networks: served, Host: true}
	}
	return Scope{}
}

// entryOf returns the entry that carries ip on one of nets.
func entryOf(nets []*Network, ip netip.Addr) *aardvarkconf.Entry {
	for _, n := range nets {
		if e := n.byIP[ip]; e != nil {
			return e
		}
	}
	return nil
}

// Internal reports whether the requester is only on internal networks.
func (sc Scope) Internal() bool {
	if len(sc.Networks) == 0 {
		return false
	}
	for _, n := range sc.Networks {
		if !n.Internal {
			return false
		}
	}
	return true
}

// Lookup returns the addresses of name (lower case) on the scope's
// networks, and whether the name exists there at all (it may have no
// address of a family).
func (sc Scope) Lookup(name string, v6 bool) ([]netip.Addr, bool) {
	var out []netip.Addr
	found := false
	for _, n := range sc.Networks {
		for _, e := range n.byName[name] {
			found = true
			ips := e.IPv4
			if v6 {
				ips = e.IPv6
			}
			for _, ip := range ips {
				if !slices.Contains(out, ip) {
					out = append(out, ip)
				}
			}
		}
	}
	return out, found
}

// Reverse returns the names of ip on the scope's networks.
func (sc Scope) Reverse(ip netip.Addr) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range sc.Networks {
		if e := n.byIP[ip]; e != nil {
			for _, name := range e.Names {
				if !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// Upstreams returns the servers to forward to, in order of precedence: the
// container's own, else its networks', else nil (meaning the host's).
func (sc Scope) Upstreams() []netip.Addr {
	if sc.Entry != nil && len(sc.Entry.DNSServers) > 0 {
		return sc.Entry.DNSServers
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, n := range sc.Networks {
		for _, ip := range n.DNSServers {
			if !seen[ip] {
				seen[ip] = true
				out = append(out, ip)
			}
		}
	}
	return out
}

// ErrNoNetworks is returned when the configuration has no network left.
var ErrNoNetworks = errors.New("no networks configured")
