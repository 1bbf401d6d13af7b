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

// The cache's on-disk form is netavark's: a JSON object that maps each
// MAC address to a list of one lease in the API's form (snake_case names,
// every field present), {"<mac>": [{"t1": 60, ..., "yiaddr": ...}]}, so
// tools that read netavark's cache read berth's. Each lease carries
// berth's own record under "berth", which a restarted proxy resumes from.
type cachedLease struct {
	T1            uint32   `json:"t1"`
	T2            uint32   `json:"t2"`
	LeaseTime     uint32   `json:"lease_time"`
	MTU           uint32   `json:"mtu"`
	DomainName    string   `json:"domain_name"`
	MACAddress    string   `json:"mac_address"`
	IsV6          bool     `json:"is_v6"`
	Siaddr        string   `json:"siaddr"`
	Yiaddr        string   `json:"yiaddr"`
	SrvID         string   `json:"srv_id"`
	SubnetMask    string   `json:"subnet_mask"`
	BroadcastAddr string   `json:"broadcast_addr"`
	DNSServers    []string `json:"dns_servers"`
	Gateways      []string `json:"gateways"`
	NTPServers    []string `json:"ntp_servers"`
	HostName      string   `json:"host_name"`
	Berth         *record  `json:"berth,omitempty"`
}

// oldLeaseFile is the form berth wrote before it took netavark's:
// {"version":1,"leases":{"<mac>":record}}. It is still read.
type oldLeaseFile struct {
	Version int                `json:"version"`
	Leases  map[string]*record `json:"leases"`
}

// cached returns rec in the cache's form.
func cached(key string, rec *record) cachedLease {
	c := cachedLease{MACAddress: key, HostName: rec.Hostname, DomainName: rec.Domain, Berth: rec}
	if rec.Lease != nil {
		p := toProto(rec.Lease, key, rec.Hostname)
		c.T1, c.T2, c.LeaseTime, c.MTU = p.T1, p.T2, p.LeaseTime, p.Mtu
		c.Siaddr, c.Yiaddr, c.SrvID = p.Siaddr, p.Yiaddr, p.SrvId
		c.SubnetMask, c.BroadcastAddr = p.SubnetMask, p.BroadcastAddr
		c.DNSServers, c.Gateways, c.NTPServers = p.DnsServers, p.Gateways, p.NtpServers
		if p.DomainName != "" {
			c.DomainName = p.DomainName
		}
	}
	c.DNSServers, c.Gateways, c.NTPServers = nonNil(c.DNSServers), nonNil(c.Gateways), nonNil(c.NTPServers)
	return c
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// store reads and writes the lease cache, <dir>/nv-proxy.lease. Writes go
// to a temporary file that replaces the cache in one rename, so a crash
// leaves the old or the new state, never half of one.
type store struct {
	path string
}

// load returns the cached records by MAC. Leases without berth's record
// (written by netavark) cannot be resumed and are left out.
func (s store) load() (map[string]*record, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lease file: %w", err)
	}
	return parseLeaseFile(b)
}

// parseLeaseFile reads either form of the cache.
func parseLeaseFile(b []byte) (map[string]*record, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("parse lease file: %w", err)
	}
	out := map[string]*record{}
	if _, ok := top["leases"]; ok {
		if _, ok := top["version"]; ok {
			var f oldLeaseFile
			if err := json.Unmarshal(b, &f); err != nil {
				return nil, fmt.Errorf("parse lease file: %w", err)
			}
			for k, r := range f.Leases {
				if r != nil {
					out[k] = r
				}
			}
			return out, nil
		}
	}
	for k, raw := range top {
		var ls []cachedLease
		if err := json.Unmarshal(raw, &ls); err != nil {
			return nil, fmt.Errorf("parse lease file: lease of %s: %w", k, err)
		}
		if len(ls) > 0 && ls[0].Berth != nil {
			out[k] = ls[0].Berth
		}
	}
	return out, nil
}

func (s store) save(leases map[string]*record) error {
	f := make(map[string][]cachedLease, len(leases))
	for k, r := range leases {
		f[k] = []cachedLease{cached(k, r)}
	}
	b, err := json.MarshalIndent(f, "", "  ")
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
