package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/compat/slirp4netns"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
)

// Until berth has a container engine, a "container" for connect,
// disconnect and reload is a network namespace registered with berth: an ID
// (64 hex), a name and the namespace path. `berth network connect --netns
// PATH NET NAME` (or `NET ns:PATH`) registers one; it stays registered while
// it is attached to at least one network.

// ErrNoSuchContainer: no registered container has that name or ID.
var ErrNoSuchContainer = errors.New("no such container")

// attached is one network of a container, as it was set up.
type attached struct {
	// Network is the definition the container was set up with (teardown
	// uses it even if the network file changed or went away).
	Network network.Network `json:"network"`
	// Opts holds the interface name, aliases, the addresses IPAM gave
	// (static_ips) and the MAC address (static_mac) after setup.
	Opts network.PerNetworkOptions `json:"opts"`
}

// container is one registered namespace.
type container struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	NetNS    string     `json:"netns"`
	Created  time.Time  `json:"created"`
	Networks []attached `json:"networks"`
	// Ports are the container's published ports (engine containers); they
	// are set up on every network it joins.
	Ports []network.PortMapping `json:"ports,omitempty"`
	// Members (a pod's infra container) are the pod's other containers'
	// names: DNS aliases on every network.
	Members []string `json:"members,omitempty"`
	// Forwards are the IDs of its port forwards on the rootless netns's
	// uplink (rootless engine containers).
	Forwards []int `json:"forwards,omitempty"`
	// Fwd are those forwards (to add them again when the uplink
	// restarted).
	Fwd []slirp4netns.Hostfwd `json:"fwd,omitempty"`
}

func (c *container) find(netName string) int {
	for i, a := range c.Networks {
		if a.Network.Name == netName {
			return i
		}
	}
	return -1
}

// options builds the core input for the given attachments.
//
// Published ports live on one attachment, the first bridge network of the
// container (as core maps them within one call): they are passed only
// when atts holds it, so connecting a second network does not publish them
// again (berth's firewall maps a port to one destination) and
// disconnecting a network that does not hold them leaves them alone.
func (c *container) options(atts []attached) *network.Options {
	o := &network.Options{ContainerID: c.ID, ContainerName: c.Name, NetworkInfo: map[string]network.Network{}}
	if holder := c.portHolder(); holder != "" {
		for _, a := range atts {
			if a.Network.Name == holder {
				o.PortMappings = c.Ports
			}
		}
	}
	for _, a := range atts {
		if len(c.Members) > 0 {
			a.Opts.Aliases = append(append([]string{}, a.Opts.Aliases...), c.Members...)
		}
		o.Networks = append(o.Networks, network.NamedNetworkOptions{Name: a.Network.Name, PerNetworkOptions: a.Opts})
		o.NetworkInfo[a.Network.Name] = a.Network
	}
	return o
}

// portHolder is the network whose attachment carries the container's
// published ports: its first managed, non-internal bridge network.
func (c *container) portHolder() string {
	for _, a := range c.Networks {
		n := a.Network
		if n.Driver == network.DriverBridge && !n.Internal && !n.Unmanaged() {
			return n.Name
		}
	}
	return ""
}

// nextInterface returns the first ethN no attachment uses.
func (c *container) nextInterface() string {
	used := map[string]bool{}
	for _, a := range c.Networks {
		used[a.Opts.InterfaceName] = true
	}
	for i := 0; ; i++ {
		n := fmt.Sprintf("eth%d", i)
		if !used[n] {
			return n
		}
	}
}

// containerStore keeps the registered containers in a bbolt database,
// <run dir>/berth/containers.db; each change is one transaction.
type containerStore struct {
	path string
}

var bucketCtrs = []byte("containers")

func (s *containerStore) open(readOnly bool) (*bolt.DB, error) {
	if readOnly {
		if st, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0) { // empty: still being created (bbolt must not initialise it read-only)
			return nil, nil
		}
	} else if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: time.Minute, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open container records %s: %w", s.path, err)
	}
	return db, nil
}

// all returns every registered container, by name.
func (s *containerStore) all() ([]*container, error) {
	db, err := s.open(true)
	if err != nil || db == nil {
		return nil, err
	}
	defer db.Close()
	var out []*container
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCtrs)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var c container
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("container record %s: %w", k, err)
			}
			out = append(out, &c)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// lookup finds a container by name, full ID or unique ID prefix, or by
// namespace path when the reference is ns:PATH.
func lookup(all []*container, ref string) (*container, error) {
	if p, ok := strings.CutPrefix(ref, "ns:"); ok {
		for _, c := range all {
			if c.NetNS == p {
				return c, nil
			}
		}
		return nil, fmt.Errorf("no container with name or ID %q found: %w", ref, ErrNoSuchContainer)
	}
	found, ok, ambiguous := engine.MatchRef(all, ref, func(c *container) string { return c.ID }, func(c *container) string { return c.Name })
	switch {
	case ambiguous:
		return nil, fmt.Errorf("more than one result for container ID %s", ref)
	case !ok:
		return nil, fmt.Errorf("no container with name or ID %q found: %w", ref, ErrNoSuchContainer)
	}
	return found, nil
}

// update runs fn on the current records in one transaction; fn returns the
// records to store (a nil entry or one without networks is deleted).
func (s *containerStore) update(fn func(all []*container) ([]*container, error)) error {
	db, err := s.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCtrs)
		if err != nil {
			return err
		}
		var all []*container
		if err := b.ForEach(func(k, v []byte) error {
			var c container
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("container record %s: %w", k, err)
			}
			all = append(all, &c)
			return nil
		}); err != nil {
			return err
		}
		changed, err := fn(all)
		if err != nil {
			return err
		}
		for _, c := range changed {
			if len(c.Networks) == 0 {
				if err := b.Delete([]byte(c.ID)); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(c.ID), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validContainerName matches Podman's container name rule.
func validContainerName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '_' || r == '.' || r == '-'
		}
		if !ok {
			return false
		}
	}
	return true
}
