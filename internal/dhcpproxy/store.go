package dhcpproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berthnet/berth/internal/dhcp"
)

// LeaseFile is the name of the lease cache in the proxy's directory.
const LeaseFile = "nv-proxy.lease"

// record is one container interface the proxy keeps a lease for.
type record struct {
	HostIface      string `json:"host_iface,omitempty"`
	ContainerIface string `json:"container_iface"`
	MAC            string `json:"mac"`
	ContainerID    string `json:"container_id,omitempty"`
	Hostname       string `json:"host_name,omitempty"`
	Domain         string `json:"domain_name,omitempty"`
	NSPath         string `json:"ns_path"`
	Metric         uint32 `json:"metric"`
	NoDefaultRoute bool   `json:"no_default_route,omitempty"`
	// Lease is nil while the lease is lost and a new one is sought.
	Lease *dhcp.Lease `json:"lease"`
}

// leaseFile is the on-disk form: {"version":1,"leases":{"<mac>":record}}.
type leaseFile struct {
	Version int                `json:"version"`
	Leases  map[string]*record `json:"leases"`
}

// store reads and writes the lease cache, <dir>/nv-proxy.lease. Writes go
// to a temporary file that replaces the cache in one rename, so a crash
// leaves the old or the new state, never half of one.
type store struct {
	path string
}

func (s store) load() (map[string]*record, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lease file: %w", err)
	}
	var f leaseFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse lease file %s: %w", s.path, err)
	}
	if f.Leases == nil {
		f.Leases = map[string]*record{}
	}
	return f.Leases, nil
}

func (s store) save(leases map[string]*record) error {
	b, err := json.MarshalIndent(leaseFile{Version: 1, Leases: leases}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode leases: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), "."+filepath.Base(s.path)+".*")
	if err != nil {
		return fmt.Errorf("write lease file: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write lease file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("replace lease file: %w", err)
	}
	return nil
}
