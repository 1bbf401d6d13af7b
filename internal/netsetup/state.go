package netsetup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/network"
)

// store keeps berth's own state under <config>/berth:
//
//	lock                          flock held for every setup and teardown
//	containers/<ctr id>.json      the setup input, for firewall-reload and
//	                              for teardown when the namespace is gone
//	networks/<net id>/<ctr id>    one marker per container on a network:
//	                              the last one out removes bridge and rules
//	networks/<net id>/.network    the network's definition while it is in use
type store struct {
	dir string
}

func (s store) lock() (func(), error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	p := filepath.Join(s.dir, "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

func (s store) containerFile(id string) string {
	return filepath.Join(s.dir, "containers", id+".json")
}

func (s store) marker(netID, ctrID string) string {
	return filepath.Join(s.dir, "networks", netID, ctrID)
}

// record is what is kept per container.
type record struct {
	NSPath  string           `json:"ns_path"`
	Options *network.Options `json:"options"`
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s store) save(nsPath string, o *network.Options) error {
	b, err := json.Marshal(record{NSPath: nsPath, Options: o})
	if err != nil {
		return err
	}
	if err := writeAtomic(s.containerFile(o.ContainerID), b); err != nil {
		return fmt.Errorf("save container state: %w", err)
	}
	for _, a := range o.Networks {
		n := o.NetworkInfo[a.Name]
		m := s.marker(n.ID, o.ContainerID)
		if err := os.MkdirAll(filepath.Dir(m), 0o755); err != nil {
			return fmt.Errorf("save network marker: %w", err)
		}
		if err := os.WriteFile(m, nil, 0o644); err != nil {
			return fmt.Errorf("save network marker: %w", err)
		}
		// The definition is written with the network's first container;
		// Podman does not change a network's subnets while it is in use.
		def := filepath.Join(filepath.Dir(m), ".network")
		if _, err := os.Stat(def); err != nil {
			b, err := json.Marshal(n)
			if err != nil {
				return err
			}
			if err := writeAtomic(def, b); err != nil {
				return fmt.Errorf("save network definition: %w", err)
			}
		}
	}
	return nil
}

// activeNetworks returns the definitions of networks that have containers.
func (s store) activeNetworks() []network.Network {
	dir := filepath.Join(s.dir, "networks")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []network.Network
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), ".network"))
		if err != nil {
			continue
		}
		var n network.Network
		if json.Unmarshal(b, &n) == nil && s.others(e.Name(), "") {
			out = append(out, n)
		}
	}
	return out
}

func (s store) load(id string) (*record, error) {
	b, err := os.ReadFile(s.containerFile(id))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", s.containerFile(id), err)
	}
	return &r, nil
}

func (s store) remove(o *network.Options) error {
	var errs []error
	for _, a := range o.Networks {
		n := o.NetworkInfo[a.Name]
		if err := os.Remove(s.marker(n.ID, o.ContainerID)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
		if !s.others(n.ID, o.ContainerID) {
			dir := filepath.Dir(s.marker(n.ID, o.ContainerID))
			_ = os.Remove(filepath.Join(dir, ".network"))
			_ = os.Remove(dir)
		}
	}
	if err := os.Remove(s.containerFile(o.ContainerID)); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// others reports whether containers other than ctrID are recorded on the
// network.
func (s store) others(netID, ctrID string) bool {
	d, err := os.Open(filepath.Join(s.dir, "networks", netID))
	if err != nil {
		return false
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(8)
		for _, n := range names {
			if n != ctrID && !strings.HasPrefix(n, ".") && !strings.HasSuffix(n, ".tmp") {
				return true
			}
		}
		if err != nil {
			return false
		}
	}
}

// all returns every recorded container.
func (s store) all() ([]*record, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "containers"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []*record
	var errs []error
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		r, err := s.load(strings.TrimSuffix(e.Name(), ".json"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}
