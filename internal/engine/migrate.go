package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/boltfile"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/usernet"
)

// legacyRecord is a record of the container database berth's CLI kept
// beside the engine's (bucket "containers", JSON by ID): a container's
// attachments, pod members and rootless forwards.
type legacyRecord struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	NetNS    string       `json:"netns"`
	Created  time.Time    `json:"created"`
	Networks []Attachment `json:"networks"`
	// Ports and Members duplicate the engine container's configuration.
	Ports    []network.PortMapping `json:"ports,omitempty"`
	Members  []string              `json:"members,omitempty"`
	Forwards []int                 `json:"forwards,omitempty"`
	Fwd      []usernet.Forward     `json:"fwd,omitempty"`
}

// MigratedSuffix is added to the name of a legacy database once its
// records are in the engine's.
const MigratedSuffix = ".migrated"

// migrateLegacy merges the legacy database at path into the engine's
// records in one transaction, then renames it aside. Running it again
// (after a crash between the two steps) stores the same records again.
func (e *Engine) migrateLegacy(path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	old, err := readLegacy(path)
	if err != nil {
		return err
	}
	if len(old) > 0 {
		if err := e.mergeLegacy(old); err != nil {
			return fmt.Errorf("migrate container records %s: %w", path, err)
		}
	}
	if err := os.Rename(path, path+MigratedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("migrate container records: %w", err)
	}
	e.log.Info("migrated container records", "from", path, "records", len(old))
	return nil
}

// readLegacy reads every record of a legacy database.
func readLegacy(path string) ([]legacyRecord, error) {
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return nil, nil //nolint:nilerr // absent or never initialised: nothing to migrate
	}
	db, err := boltfile.Open(path, 0o600, &bolt.Options{Timeout: time.Minute, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open legacy container records %s: %w", path, err)
	}
	defer db.Close()
	var out []legacyRecord
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r legacyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("legacy container record %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// mergeLegacy stores the legacy records: an engine container's
// attachments and forwards go on its record, a namespace that is no
// engine container becomes a registered one.
func (e *Engine) mergeLegacy(old []legacyRecord) error {
	return e.update(func(b *bolt.Bucket) error {
		for _, r := range old {
			if len(r.Networks) == 0 {
				continue
			}
			c := registeredNamespace(r.ID, r.Name, r.NetNS, r.Created)
			if v := b.Get([]byte(r.ID)); v != nil {
				c = &Container{}
				if err := json.Unmarshal(v, c); err != nil {
					return fmt.Errorf("container record %s: %w", r.ID, err)
				}
			}
			c.State.Attachments, c.State.Forwards, c.State.Fwd = r.Networks, r.Forwards, r.Fwd
			if c.Config.Net.Kind == runopts.ModeNS && c.Config.Registered {
				c.State.NetNS = r.NetNS
			}
			v, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(r.ID), v); err != nil {
				return err
			}
		}
		return nil
	})
}
