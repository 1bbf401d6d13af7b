// Package ipam hands out container addresses on host-local networks and
// keeps them in a bbolt database laid out as Podman's ipam.db
// (<run dir>/ipam.db), so berth and Podman sharing a run directory never give
// one address to two containers:
//
//	<network name>/                 one bucket per network
//	    <subnet CIDR>/              one bucket per subnet
//	        lastIP   = raw bytes of the last dynamically given address
//	        <raw ip> = <container ID>
//	    ids/
//	        <container ID> = JSON array of the container's addresses
//
// Every call opens the database, runs one transaction and closes it again:
// the open takes bbolt's file lock, so concurrent processes take turns, and
// a transaction is all or nothing, so a process killed at any point leaves
// either the old or the new state (bbolt syncs each commit).
//
// Addresses are given round-robin, as Podman does: after lastIP, skipping the
// subnet address, the gateways and (IPv4) the broadcast address, within the
// subnet's lease range, wrapping once.
package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/boltfile"
	"github.com/berthnet/berth/internal/network"
)

// Errors callers branch on.
var (
	// ErrInvalid: a static request does not fit the network.
	ErrInvalid = fmt.Errorf("invalid address request: %w", network.ErrInvalid)
	// ErrInUse: a requested address belongs to another container.
	ErrInUse = errors.New("address already allocated")
	// ErrExhausted: no free address is left in a range.
	ErrExhausted = errors.New("no free address")
)

var (
	keyLastIP = []byte("lastIP")
	keyIDs    = []byte("ids")
)

// Allocator is the address database at one path.
type Allocator struct {
	path    string
	timeout time.Duration
}

// New returns an allocator for the database at path (created on first use).
func New(path string) (*Allocator, error) {
	if path == "" {
		return nil, errors.New("ipam: no database path")
	}
	return &Allocator{path: path, timeout: 60 * time.Second}, nil
}

// Path returns the database file.
func (a *Allocator) Path() string { return a.path }

func (a *Allocator) open(readOnly bool) (*bolt.DB, error) {
	if readOnly {
		// A missing or still empty file holds nothing. An empty one must
		// not be opened read-only: bbolt would initialise it through the
		// read-only descriptor (EBADF) when this open wins the lock against
		// the process that just created it.
		if st, err := os.Stat(a.path); errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0) {
			return nil, nil
		}
	} else if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
		return nil, fmt.Errorf("create ipam directory: %w", err)
	}
	db, err := boltfile.Open(a.path, 0o600, &bolt.Options{Timeout: a.timeout, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open ipam database %s: %w", a.path, err)
	}
	return db, nil
}

func (a *Allocator) update(fn func(tx *bolt.Tx) error) error {
	db, err := a.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(fn)
}

func (a *Allocator) view(fn func(tx *bolt.Tx) error) error {
	db, err := a.open(true)
	if err != nil || db == nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}

// Uses reports whether a network allocates addresses through this package
// (host-local IPAM with subnets).
func Uses(n network.Network) bool {
	return n.IPAMDriver() == network.IPAMHostLocal && len(n.Subnets) > 0
}

// Validate checks static addresses against a network before anything is
// saved: each must lie in one of its subnets, at most one per subnet, and
// not be the subnet address, a gateway or the IPv4 broadcast address.
func Validate(n network.Network, static []netip.Addr) error {
	seen := map[netip.Prefix]netip.Addr{}
	for _, ip := range static {
		ip = ip.Unmap()
		s, ok := n.SubnetFor(ip)
		if !ok {
			return fmt.Errorf("requested static ip %s not in any subnet on network %s (%s): %w", ip, n.Name, subnetList(n), ErrInvalid)
		}
		if other, dup := seen[s.Subnet]; dup {
			return fmt.Errorf("requested static ips %s and %s are both in subnet %s of network %s; give at most one per subnet: %w", other, ip, s.Subnet, n.Name, ErrInvalid)
		}
		seen[s.Subnet] = ip
		if err := network.CheckHostAddr(s.Subnet, ip); err != nil {
			return fmt.Errorf("requested static ip %w: %w", err, ErrInvalid)
		}
		if s.Gateway == ip {
			return fmt.Errorf("requested static ip %s is the gateway of network %s: %w", ip, n.Name, ErrInvalid)
		}
	}
	return nil
}

func subnetList(n network.Network) string {
	out := ""
	for i, s := range n.Subnets {
		if i > 0 {
			out += ", "
		}
		out += s.Subnet.String()
	}
	if out == "" {
		return "no subnets"
	}
	return out
}

// Allocate gives container ctrID one address in every subnet of n: the
// static address for that subnet when one is requested, else the next free
// one. It returns the addresses with their subnet's prefix length. Nothing is
// saved unless every subnet got an address.
func (a *Allocator) Allocate(ctrID string, n network.Network, static []netip.Addr) ([]netip.Prefix, error) {
	if ctrID == "" {
		return nil, errors.New("allocate addresses: no container ID")
	}
	if !Uses(n) {
		return nil, nil
	}
	if err := Validate(n, static); err != nil {
		return nil, err
	}
	var out []netip.Prefix
	err := a.update(func(tx *bolt.Tx) error {
		out = nil
		nb, err := tx.CreateBucketIfNotExists([]byte(n.Name))
		if err != nil {
			return err
		}
		ids, err := nb.CreateBucketIfNotExists(keyIDs)
		if err != nil {
			return err
		}
		if ids.Get([]byte(ctrID)) != nil {
			return fmt.Errorf("container %s already has addresses on network %s: %w", network.ShortID(ctrID), n.Name, ErrInUse)
		}
		var ips []string
		for _, s := range n.Subnets {
			sb, err := nb.CreateBucketIfNotExists([]byte(s.Subnet.Masked().String()))
			if err != nil {
				return err
			}
			var ip netip.Addr
			for _, st := range static {
				if s.Subnet.Contains(st.Unmap()) {
					ip = st.Unmap()
				}
			}
			if ip.IsValid() {
				if owner := sb.Get(ip.AsSlice()); owner != nil {
					return fmt.Errorf("IPAM error: requested ip address %s is already allocated to container ID %s: %w", ip, owner, ErrInUse)
				}
			} else {
				ip, err = next(sb, s)
				if err != nil {
					return err
				}
				if err := sb.Put(keyLastIP, ip.AsSlice()); err != nil {
					return err
				}
			}
			if err := sb.Put(ip.AsSlice(), []byte(ctrID)); err != nil {
				return err
			}
			ips = append(ips, ip.String())
			out = append(out, netip.PrefixFrom(ip, s.Subnet.Bits()))
		}
		b, _ := json.Marshal(ips)
		return ids.Put([]byte(ctrID), b)
	})
	if err != nil {
		return nil, fmt.Errorf("allocate addresses on network %s: %w", n.Name, err)
	}
	return out, nil
}

// rangeOf returns the first and last address IPAM may give in s.
func rangeOf(s network.Subnet) (netip.Addr, netip.Addr) {
	p := s.Subnet.Masked()
	first, last := p.Addr().Next(), network.LastAddr(p)
	if p.Addr().Is4() && p.Bits() < 31 {
		last = last.Prev()
	}
	if lr := s.LeaseRange; lr != nil {
		if lr.StartIP.IsValid() && p.Contains(lr.StartIP) && lr.StartIP.Compare(first) > 0 {
			first = lr.StartIP
		}
		if lr.EndIP.IsValid() && p.Contains(lr.EndIP) && lr.EndIP.Compare(last) < 0 {
			last = lr.EndIP
		}
	}
	return first, last
}

// next finds the next free address after lastIP, wrapping once.
func next(sb *bolt.Bucket, s network.Subnet) (netip.Addr, error) {
	first, last := rangeOf(s)
	start := first
	if b := sb.Get(keyLastIP); b != nil {
		if l, ok := netip.AddrFromSlice(b); ok && l.Compare(first) >= 0 && l.Compare(last) < 0 {
			start = l.Next()
		}
	}
	free := func(ip netip.Addr) bool {
		return ip != s.Gateway && sb.Get(ip.AsSlice()) == nil
	}
	if first.Compare(last) <= 0 {
		for ip := start; ip.IsValid() && ip.Compare(last) <= 0; ip = ip.Next() {
			if free(ip) {
				return ip, nil
			}
		}
		for ip := first; ip.IsValid() && ip.Compare(start) < 0; ip = ip.Next() {
			if free(ip) {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("IPAM error: failed to find free IP in range: %s - %s: %w", first, last, ErrExhausted)
}

// Release frees every address ctrID holds on the network named netName. A
// container without addresses there is fine.
func (a *Allocator) Release(ctrID, netName string) error {
	err := a.update(func(tx *bolt.Tx) error {
		nb := tx.Bucket([]byte(netName))
		if nb == nil {
			return nil
		}
		return release(nb, ctrID)
	})
	if err != nil {
		return fmt.Errorf("release addresses of %s on network %s: %w", network.ShortID(ctrID), netName, err)
	}
	return nil
}

func release(nb *bolt.Bucket, ctrID string) error {
	// Walk every subnet bucket rather than trusting the ids entry alone, so
	// a half-written state (from a version that did not write both in one
	// transaction) is repaired too.
	c := nb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil || string(k) == string(keyIDs) {
			continue
		}
		sb := nb.Bucket(k)
		var del [][]byte
		sc := sb.Cursor()
		for ik, iv := sc.First(); ik != nil; ik, iv = sc.Next() {
			if string(ik) != string(keyLastIP) && string(iv) == ctrID {
				del = append(del, append([]byte(nil), ik...))
			}
		}
		for _, d := range del {
			if err := sb.Delete(d); err != nil {
				return err
			}
		}
	}
	if ids := nb.Bucket(keyIDs); ids != nil {
		return ids.Delete([]byte(ctrID))
	}
	return nil
}

// ReleaseAll frees ctrID's addresses on every network.
func (a *Allocator) ReleaseAll(ctrID string) error {
	err := a.update(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, nb *bolt.Bucket) error {
			return release(nb, ctrID)
		})
	})
	if err != nil {
		return fmt.Errorf("release addresses of %s: %w", network.ShortID(ctrID), err)
	}
	return nil
}

// RemoveNetwork drops a network's bucket (on `network rm`).
func (a *Allocator) RemoveNetwork(netName string) error {
	err := a.update(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(netName)) == nil {
			return nil
		}
		return tx.DeleteBucket([]byte(netName))
	})
	if err != nil {
		return fmt.Errorf("remove ipam records of network %s: %w", netName, err)
	}
	return nil
}

// Addresses returns the addresses ctrID holds on netName.
func (a *Allocator) Addresses(ctrID, netName string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := a.view(func(tx *bolt.Tx) error {
		nb := tx.Bucket([]byte(netName))
		if nb == nil {
			return nil
		}
		ids := nb.Bucket(keyIDs)
		if ids == nil {
			return nil
		}
		v := ids.Get([]byte(ctrID))
		if v == nil {
			return nil
		}
		var ips []string
		if err := json.Unmarshal(v, &ips); err != nil {
			return fmt.Errorf("decode addresses of %s: %w", network.ShortID(ctrID), err)
		}
		for _, s := range ips {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("decode addresses of %s: %w", network.ShortID(ctrID), err)
			}
			out = append(out, ip)
		}
		return nil
	})
	return out, err
}

// Lease is one address held by a container.
type Lease struct {
	Network     string
	Subnet      string
	IP          netip.Addr
	ContainerID string
}

// Dump returns every lease, sorted, for checks and `berth info`.
func (a *Allocator) Dump() ([]Lease, error) {
	var out []Lease
	err := a.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, nb *bolt.Bucket) error {
			return nb.ForEachBucket(func(k []byte) error {
				if string(k) == string(keyIDs) {
					return nil
				}
				return nb.Bucket(k).ForEach(func(ik, iv []byte) error {
					if string(ik) == string(keyLastIP) {
						return nil
					}
					ip, ok := netip.AddrFromSlice(ik)
					if !ok {
						return fmt.Errorf("network %s subnet %s: bad address key %x", name, k, ik)
					}
					out = append(out, Lease{Network: string(name), Subnet: string(k), IP: ip, ContainerID: string(iv)})
					return nil
				})
			})
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out, err
}

// Check verifies that the two views of the database agree: every address
// key belongs to a container whose ids entry lists it, and every ids entry's
// addresses are keyed to that container. It is what a crash must never break.
func (a *Allocator) Check() error {
	var errs []error
	err := a.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, nb *bolt.Bucket) error {
			listed := map[string]map[string]bool{}
			if ids := nb.Bucket(keyIDs); ids != nil {
				_ = ids.ForEach(func(k, v []byte) error {
					var ips []string
					if err := json.Unmarshal(v, &ips); err != nil {
						errs = append(errs, fmt.Errorf("network %s: container %s: %v", name, k, err))
						return nil
					}
					listed[string(k)] = map[string]bool{}
					for _, ip := range ips {
						listed[string(k)][ip] = true
					}
					return nil
				})
			}
			keyed := map[string]map[string]bool{}
			_ = nb.ForEachBucket(func(k []byte) error {
				if string(k) == string(keyIDs) {
					return nil
				}
				return nb.Bucket(k).ForEach(func(ik, iv []byte) error {
					if string(ik) == string(keyLastIP) {
						return nil
					}
					ip, _ := netip.AddrFromSlice(ik)
					if keyed[string(iv)] == nil {
						keyed[string(iv)] = map[string]bool{}
					}
					keyed[string(iv)][ip.String()] = true
					if !listed[string(iv)][ip.String()] {
						errs = append(errs, fmt.Errorf("network %s: %s is held by %s, which does not list it", name, ip, iv))
					}
					return nil
				})
			})
			for ctr, ips := range listed {
				for ip := range ips {
					if !keyed[ctr][ip] {
						errs = append(errs, fmt.Errorf("network %s: container %s lists %s, which is not held for it", name, ctr, ip))
					}
				}
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// Capacity returns how many addresses IPAM can give in s (its lease range
// less the gateway), at most 1<<30.
func Capacity(s network.Subnet) int {
	first, last := rangeOf(s)
	n := 0
	for ip := first; ip.IsValid() && ip.Compare(last) <= 0 && n < 1<<30; ip = ip.Next() {
		if ip != s.Gateway {
			n++
		}
		if n > 1<<16 {
			// Counting further costs time and no one fills it: treat
			// large ranges as never full.
			return 1 << 30
		}
	}
	return n
}
