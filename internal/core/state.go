package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/network"
)

// store keeps berth's own state in one bbolt database, <config>/berth/state.db:
//
//	containers/<ctr id>            the setup input and netns path, for
//	                               firewall-reload and teardown without a netns
//	networks/<net id>              the network's definition while it is in use
//	members/<net id>/<ctr id>      one key per container on a network: the
//	                               last one out removes bridge and rules
//
// A session holds an flock on <config>/berth/lock, which serialises setups
// and teardowns across processes. Transactions are not
// fsynced: the state lives under /run, which a reboot empties anyway, and a
// crashed process leaves either the old or the new state.
type store struct {
	dir string
}

var (
	bucketContainers = []byte("containers")
	bucketNetworks   = []byte("networks")
	bucketMembers    = []byte("members")
)

// session is an open, locked state database.
type session struct {
	lock *os.File
	db   *bolt.DB
	fw   fwTrack // the firewall's generation in this call (see heal)
	// firewalled: this call set up firewall rules (see ensureWatcher).
	firewalled bool
}

// open waits for the state lock, then opens the database. The lock is a
// blocking flock of its own: bbolt's lock polls every 50 ms, which would
// make concurrent calls queue in 50 ms steps.
func (s store) open() (*session, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	lp := filepath.Join(s.dir, "lock")
	lock, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", lp, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock %s: %w", lp, err)
	}
	p := filepath.Join(s.dir, "state.db")
	db, err := bolt.Open(p, 0o644, &bolt.Options{NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open state %s: %w", p, err)
	}
	return &session{lock: lock, db: db}, nil
}

func (s *session) close() {
	s.db.Close()
	s.lock.Close()
}

// record is what is kept per container.
type record struct {
	NSPath  string           `json:"ns_path"`
	Options *network.Options `json:"options"`
}

func netID(n network.Network) string {
	if n.ID != "" {
		return n.ID
	}
	return n.Name
}

// merged returns the record's options with o's networks added (or
// replaced): Podman's `network connect` sets a container up on one more
// network, and the record must keep the others.
func merged(old *network.Options, o *network.Options) *network.Options {
	if old == nil {
		return o
	}
	out := *o
	out.NetworkInfo = map[string]network.Network{}
	out.Networks = nil
	for _, a := range old.Networks {
		if _, again := o.Networks.Get(a.Name); !again {
			out.Networks = append(out.Networks, a)
			out.NetworkInfo[a.Name] = old.NetworkInfo[a.Name]
		}
	}
	for _, a := range o.Networks {
		out.Networks = append(out.Networks, a)
		out.NetworkInfo[a.Name] = o.NetworkInfo[a.Name]
	}
	if len(out.PortMappings) == 0 {
		out.PortMappings = old.PortMappings
	}
	return &out
}

func getRecord(c *bolt.Bucket, id string) *record {
	if c == nil {
		return nil
	}
	v := c.Get([]byte(id))
	if v == nil {
		return nil
	}
	var r record
	if json.Unmarshal(v, &r) != nil || r.Options == nil {
		return nil
	}
	return &r
}

func (s *session) save(nsPath string, o *network.Options) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		c, err := tx.CreateBucketIfNotExists(bucketContainers)
		if err != nil {
			return err
		}
		full := o
		if old := getRecord(c, o.ContainerID); old != nil && old.NSPath == nsPath {
			full = merged(old.Options, o)
		}
		rec, err := json.Marshal(record{NSPath: nsPath, Options: full})
		if err != nil {
			return err
		}
		if err := c.Put([]byte(o.ContainerID), rec); err != nil {
			return err
		}
		nets, err := tx.CreateBucketIfNotExists(bucketNetworks)
		if err != nil {
			return err
		}
		members, err := tx.CreateBucketIfNotExists(bucketMembers)
		if err != nil {
			return err
		}
		for _, a := range o.Networks {
			n := networkOf(o, a.Name)
			id := []byte(netID(n))
			m, err := members.CreateBucketIfNotExists(id)
			if err != nil {
				return err
			}
			if err := m.Put([]byte(o.ContainerID), nil); err != nil {
				return err
			}
			def, err := json.Marshal(n)
			if err != nil {
				return err
			}
			if err := nets.Put(id, def); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save container state: %w", err)
	}
	return nil
}

// remove forgets the networks of o for its container: they leave the
// container's record (which goes when no network is left) and the
// networks' member lists (a network without members is forgotten). It
// changes nothing when it fails.
func (s *session) remove(o *network.Options) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if c := tx.Bucket(bucketContainers); c != nil {
			if err := removeFromRecord(c, o); err != nil {
				return err
			}
		}
		return removeMembers(tx, o)
	})
	if err != nil {
		return fmt.Errorf("remove container state: %w", err)
	}
	return nil
}

// removeFromRecord drops only the networks of o from the container's
// record in c (`network disconnect` tears down one of several), and the
// record when none is left.
func removeFromRecord(c *bolt.Bucket, o *network.Options) error {
	var left network.Attachments
	if old := getRecord(c, o.ContainerID); old != nil {
		for _, a := range old.Options.Networks {
			if _, gone := o.Networks.Get(a.Name); !gone {
				left = append(left, a)
			}
		}
		if len(left) > 0 {
			rest := *old.Options
			rest.Networks = left
			rest.NetworkInfo = map[string]network.Network{}
			for _, a := range left {
				rest.NetworkInfo[a.Name] = old.Options.NetworkInfo[a.Name]
			}
			rec, err := json.Marshal(record{NSPath: old.NSPath, Options: &rest})
			if err != nil {
				return err
			}
			if err := c.Put([]byte(o.ContainerID), rec); err != nil {
				return err
			}
		}
	}
	if len(left) == 0 {
		return c.Delete([]byte(o.ContainerID))
	}
	return nil
}

// removeMembers removes the container from the member list of each
// network of o, and forgets a network whose list is left empty.
func removeMembers(tx *bolt.Tx, o *network.Options) error {
	members := tx.Bucket(bucketMembers)
	if members == nil {
		return nil
	}
	for _, a := range o.Networks {
		n := networkOf(o, a.Name)
		id := []byte(netID(n))
		m := members.Bucket(id)
		if m == nil {
			continue
		}
		if err := m.Delete([]byte(o.ContainerID)); err != nil {
			return err
		}
		if k, _ := m.Cursor().First(); k == nil {
			if err := members.DeleteBucket(id); err != nil {
				return err
			}
			if nets := tx.Bucket(bucketNetworks); nets != nil {
				if err := nets.Delete(id); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// others reports whether containers other than ctrID are recorded on the
// network.
func (s *session) others(netID, ctrID string) bool {
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		members := tx.Bucket(bucketMembers)
		if members == nil {
			return nil
		}
		m := members.Bucket([]byte(netID))
		if m == nil {
			return nil
		}
		c := m.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if string(k) != ctrID {
				found = true
				return nil
			}
		}
		return nil
	})
	return found
}

// member reports whether ctrID is recorded on the network.
func (s *session) member(netID, ctrID string) bool {
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		if members := tx.Bucket(bucketMembers); members != nil {
			if m := members.Bucket([]byte(netID)); m != nil {
				found = m.Get([]byte(ctrID)) != nil
			}
		}
		return nil
	})
	return found
}

// sharers counts the containers recorded on other networks (not netID)
// whose bridge is bridge: two network IDs may name one bridge.
func (s *session) sharers(bridge, netID string) int {
	count := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		nets, members := tx.Bucket(bucketNetworks), tx.Bucket(bucketMembers)
		if nets == nil || members == nil {
			return nil
		}
		return nets.ForEach(func(k, v []byte) error {
			var n network.Network
			if string(k) == netID || json.Unmarshal(v, &n) != nil || n.NetworkInterface != bridge {
				return nil
			}
			if m := members.Bucket(k); m != nil {
				count += m.Stats().KeyN
			}
			return nil
		})
	})
	return count
}

// activeNetworks returns the definitions of networks that have containers.
func (s *session) activeNetworks() []network.Network {
	var out []network.Network
	_ = s.db.View(func(tx *bolt.Tx) error {
		nets := tx.Bucket(bucketNetworks)
		if nets == nil {
			return nil
		}
		return nets.ForEach(func(_, v []byte) error {
			var n network.Network
			if json.Unmarshal(v, &n) == nil {
				out = append(out, n)
			}
			return nil
		})
	})
	return out
}

// all returns every recorded container.
func (s *session) all() ([]*record, error) {
	var out []*record
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketContainers)
		if c == nil {
			return nil
		}
		return c.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil || r.Options == nil {
				errs = append(errs, fmt.Errorf("container %s: bad record: %v", k, err))
				return nil
			}
			out = append(out, &r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read container state: %w", err)
	}
	return out, errors.Join(errs...)
}

// Record is what berth keeps about one set-up container: the namespace
// path it was set up in and the setup input, with the addresses IPAM gave
// as static_ips.
type Record struct {
	NSPath  string
	Options *network.Options
}

// Records returns every container berth has set up and not torn down, for
// listings and garbage collection. Records that cannot be decoded are
// reported in the error; the others are still returned.
func (m *Manager) Records() ([]Record, error) {
	sess, err := m.state.open()
	if err != nil {
		return nil, err
	}
	defer sess.close()
	recs, err := sess.all()
	out := make([]Record, 0, len(recs))
	for _, r := range recs {
		out = append(out, Record{NSPath: r.NSPath, Options: r.Options})
	}
	return out, err
}

// Lookup returns the record of one container, or ok false when there is
// none.
func (m *Manager) Lookup(ctrID string) (rec Record, ok bool, err error) {
	sess, err := m.state.open()
	if err != nil {
		return Record{}, false, err
	}
	defer sess.close()
	err = sess.db.View(func(tx *bolt.Tx) error {
		if r := getRecord(tx.Bucket(bucketContainers), ctrID); r != nil {
			rec, ok = Record{NSPath: r.NSPath, Options: r.Options}, true
		}
		return nil
	})
	return rec, ok, err
}
