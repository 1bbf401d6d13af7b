package engine

// Named volumes: records in the volumes bucket of the container database,
// data under ROOT/volumes/NAME/_data, as Podman's local driver keeps them.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/runopts"
)

// Volume is a named volume's record.
type Volume struct {
	Name    string            `json:"name"`
	Driver  string            `json:"driver"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Anonymous: created for one container (-v /path, an image's
	// VOLUME); rm -v and --rm remove it with the container.
	Anonymous bool `json:"anonymous,omitempty"`
	// NeedsCopyUp: the image's content at the mount point is copied into
	// the volume when a container first mounts it (if it is empty);
	// NeedsChown: the volume's directory then takes the owner of that
	// content, else the container's user.
	NeedsCopyUp bool `json:"needs_copy_up,omitempty"`
	NeedsChown  bool `json:"needs_chown,omitempty"`
}

// VolumeOptions are the options of `volume create`.
type VolumeOptions struct {
	Name      string
	Labels    map[string]string
	Anonymous bool
}

// Errors of volume operations.
var (
	ErrNoSuchVolume = errors.New("no such volume")
	ErrVolumeExists = errors.New("volume already exists")
	ErrVolumeInUse  = errors.New("volume is being used")
)

// LocalDriver is the only volume driver.
const LocalDriver = "local"

var volBucket = []byte("volumes")

// VolumeDir is the directory of a volume; its data is in _data under it.
func (e *Engine) VolumeDir(name string) string { return filepath.Join(e.cfg.Root, "volumes", name) }

// VolumePath is the volume's data directory (its mount point).
func (e *Engine) VolumePath(name string) string { return filepath.Join(e.VolumeDir(name), "_data") }

// check validates a stored record.
func (v *Volume) check() error {
	switch {
	case !runopts.ValidVolumeName(v.Name):
		return fmt.Errorf("invalid name %q", v.Name)
	case v.Driver != LocalDriver:
		return fmt.Errorf("volume %s: unknown driver %q", v.Name, v.Driver)
	case v.Created.IsZero():
		return fmt.Errorf("volume %s: no creation time", v.Name)
	}
	for k := range v.Labels {
		if k == "" {
			return fmt.Errorf("volume %s: empty label key", v.Name)
		}
	}
	return nil
}

// Volumes returns every volume by name.
func (e *Engine) Volumes() ([]*Volume, error) {
	all, err := readAll[Volume](e, volBucket, "volume")
	if err != nil {
		return nil, err
	}
	for _, v := range all {
		if err := v.check(); err != nil {
			return nil, fmt.Errorf("volume record: %w", err)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, nil
}

// GetVolume finds a volume by name or unique name prefix.
func (e *Engine) GetVolume(ref string) (*Volume, error) {
	all, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	name := func(v *Volume) string { return v.Name }
	v, ok, ambiguous := MatchRef(all, ref, name, name)
	switch {
	case ambiguous:
		return nil, fmt.Errorf("more than one result for volume name %s", ref)
	case !ok:
		return nil, fmt.Errorf("no volume with name %q found: %w", ref, ErrNoSuchVolume)
	}
	return v, nil
}

// CreateVolume creates a volume (a random name when none is given).
func (e *Engine) CreateVolume(o VolumeOptions) (*Volume, error) {
	if o.Name == "" {
		o.Name = randomID()
	}
	if !runopts.ValidVolumeName(o.Name) {
		return nil, fmt.Errorf("volume name %q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", o.Name)
	}
	v := &Volume{Name: o.Name, Driver: LocalDriver, Created: e.cfg.Now(), Labels: o.Labels,
		Anonymous: o.Anonymous, NeedsCopyUp: true, NeedsChown: true}
	if err := os.MkdirAll(filepath.Join(e.cfg.Root, "volumes"), 0o700); err != nil {
		return nil, fmt.Errorf("create volume directory: %w", err)
	}
	if err := os.Mkdir(e.VolumeDir(v.Name), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			if _, gerr := e.volume(v.Name); gerr == nil {
				return nil, fmt.Errorf("volume with name %s already exists: %w", v.Name, ErrVolumeExists)
			}
			return nil, fmt.Errorf("volume %s: directory %s exists without a record (left by a failed removal?): remove it", v.Name, e.VolumeDir(v.Name))
		}
		return nil, fmt.Errorf("create volume: %w", err)
	}
	err := os.Mkdir(e.VolumePath(v.Name), 0o755)
	if err == nil {
		err = e.putVolume(v, true)
	}
	if err != nil {
		_ = os.RemoveAll(e.VolumeDir(v.Name))
		return nil, err
	}
	e.VolumeEvent("create", v.Name)
	return v, nil
}

// volume returns the record of exactly name.
func (e *Engine) volume(name string) (*Volume, error) {
	all, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	for _, v := range all {
		if v.Name == name {
			return v, nil
		}
	}
	return nil, fmt.Errorf("no volume with name %q found: %w", name, ErrNoSuchVolume)
}

// putVolume stores v; isNew: the name must be free.
func (e *Engine) putVolume(v *Volume, isNew bool) error {
	return e.updateVolumes(func(b *bolt.Bucket) error {
		exists := b.Get([]byte(v.Name)) != nil
		if isNew && exists {
			return fmt.Errorf("volume with name %s already exists: %w", v.Name, ErrVolumeExists)
		}
		if !isNew && !exists {
			return fmt.Errorf("volume %s: %w", v.Name, ErrNoSuchVolume)
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return b.Put([]byte(v.Name), data)
	})
}

func (e *Engine) updateVolumes(fn func(b *bolt.Bucket) error) error {
	db, err := e.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(volBucket)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

// volumeUsers returns the IDs of the containers of the transaction that
// mount the volume name.
func volumeUsers(tx *bolt.Tx, name string) ([]string, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil, nil
	}
	var ids []string
	err := b.ForEach(func(k, v []byte) error {
		var c Container
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("container record %s: %w", k, err)
		}
		if usesVolume(&c, name) {
			ids = append(ids, c.Config.ID)
		}
		return nil
	})
	return ids, err
}

func usesVolume(c *Container, name string) bool {
	for _, m := range c.Config.Mounts {
		if m.Type == runopts.MountVolume && m.Source == name {
			return true
		}
	}
	return false
}

// VolumeUsers returns the IDs of the containers that use the volume.
func (e *Engine) VolumeUsers(name string) ([]string, error) {
	all, err := e.list()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range all {
		if usesVolume(c, name) {
			ids = append(ids, c.Config.ID)
		}
	}
	return ids, nil
}

// RemoveVolume removes a volume and its data. A volume that containers
// use is refused (ErrVolumeInUse); force removes those containers first,
// as Podman does.
func (e *Engine) RemoveVolume(ref string, force bool) error {
	v, err := e.GetVolume(ref)
	if err != nil {
		return err
	}
	if force {
		users, err := e.VolumeUsers(v.Name)
		if err != nil {
			return err
		}
		for _, id := range users {
			c, err := e.Get(id)
			if errors.Is(err, ErrNoSuchContainer) {
				continue
			}
			if err == nil {
				err = e.removeContainer(c, true, false, false)
			}
			if err != nil && !errors.Is(err, ErrNoSuchContainer) {
				return fmt.Errorf("remove container %s using volume %s: %w", id, v.Name, err)
			}
		}
	}
	return e.deleteVolume(v.Name)
}

// deleteVolume removes the record of an unused volume, then its data.
func (e *Engine) deleteVolume(name string) error {
	err := e.updateVolumes(func(b *bolt.Bucket) error {
		users, err := volumeUsers(b.Tx(), name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("volume %s is being used by the following container(s): %s: %w", name, strings.Join(users, ", "), ErrVolumeInUse)
		}
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("no volume with name %q found: %w", name, ErrNoSuchVolume)
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return err
	}
	e.VolumeEvent("remove", name)
	if err := os.RemoveAll(e.VolumeDir(name)); err != nil {
		return fmt.Errorf("remove the data of volume %s: %w", name, err)
	}
	return nil
}

// PruneVolumes removes every volume no container uses and returns their
// names.
func (e *Engine) PruneVolumes() ([]string, error) {
	all, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, v := range all {
		err := e.deleteVolume(v.Name)
		switch {
		case err == nil:
			removed = append(removed, v.Name)
		case !errors.Is(err, ErrVolumeInUse) && !errors.Is(err, ErrNoSuchVolume):
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// removeAnonymousVolumes removes the anonymous volumes of a removed
// container that no other container uses.
func (e *Engine) removeAnonymousVolumes(c *Container) error {
	var errs []error
	for _, m := range c.Config.Mounts {
		if m.Type != runopts.MountVolume || !m.Anonymous {
			continue
		}
		if err := e.deleteVolume(m.Source); err != nil && !errors.Is(err, ErrVolumeInUse) && !errors.Is(err, ErrNoSuchVolume) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkVolumesExist fails (in the transaction that stores a new
// container) when a volume the container mounts is gone.
func checkVolumesExist(tx *bolt.Tx, c *Container) error {
	b := tx.Bucket(volBucket)
	for _, m := range c.Config.Mounts {
		if m.Type == runopts.MountVolume && (b == nil || b.Get([]byte(m.Source)) == nil) {
			return fmt.Errorf("volume %s: %w", m.Source, ErrNoSuchVolume)
		}
	}
	return nil
}
