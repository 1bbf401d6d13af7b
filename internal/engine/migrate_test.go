package engine

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/usernet"
)

// writeLegacy writes records in the format of the CLI's former
// containers.db (bucket "containers", JSON by ID).
func writeLegacy(t *testing.T, path string, recs ...legacyRecord) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("containers"))
		if err != nil {
			return err
		}
		for _, r := range recs {
			v, _ := json.Marshal(r)
			if err := b.Put([]byte(r.ID), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// dumpRecords returns the engine's stored records as JSON by ID.
func dumpRecords(t *testing.T, e *Engine) map[string]string {
	t.Helper()
	all, err := e.list()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range all {
		b, _ := json.Marshal(c)
		out[c.Config.ID] = string(b)
	}
	return out
}

func TestMigrateLegacyRecords(t *testing.T) {
	d := t.TempDir()
	cfg := EngineConfig{Root: filepath.Join(d, "root"), RunRoot: filepath.Join(d, "run"), Now: func() time.Time { return time.Unix(1700000000, 0) }}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	netb, _ := runopts.ParseNetworks(nil)
	web, _, err := e.Create(CreateOptions{Name: "web", Rootfs: t.TempDir(), Args: []string{"httpd"}, Net: netb,
		Ports: []network.PortMapping{{HostPort: 18080, ContainerPort: 80, Protocol: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	n := network.Network{Name: "podman", Driver: network.DriverBridge, NetworkInterface: "podman0"}
	webAtt := Attachment{Network: n, Opts: network.PerNetworkOptions{InterfaceName: "eth0", StaticIPs: []netip.Addr{netip.MustParseAddr("10.88.0.2")}, StaticMAC: "02:00:00:00:00:02"}}
	fwd := usernet.Forward{Proto: "tcp", HostPort: 18080, GuestPort: 80}
	nsAtt := Attachment{Network: n, Opts: network.PerNetworkOptions{InterfaceName: "eth0", Aliases: []string{"www"}, StaticIPs: []netip.Addr{netip.MustParseAddr("10.88.0.3")}}}
	created := time.Unix(1690000000, 0).UTC()
	legacy := filepath.Join(d, "netrun", "berth", "containers.db")
	writeLegacy(t, legacy,
		legacyRecord{ID: web.Config.ID, Name: "web", NetNS: "/run/berth/netns/x", Networks: []Attachment{webAtt}, Ports: web.Config.Ports, Forwards: []int{7}, Fwd: []usernet.Forward{fwd}},
		legacyRecord{ID: "ab12" + web.Config.ID[4:], Name: "side", NetNS: "/run/netns/side", Created: created, Networks: []Attachment{nsAtt}},
		legacyRecord{ID: "cd34" + web.Config.ID[4:], Name: "gone"}, // no networks: was being forgotten
	)

	cfg.Network = &NetworkConfig{LegacyRecords: legacy}
	if e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("legacy database still in place: %v", err)
	}
	if _, err := os.Stat(legacy + MigratedSuffix); err != nil {
		t.Errorf("legacy database not renamed aside: %v", err)
	}
	got, err := e.record(web.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.State.Attachments, []Attachment{webAtt}) || !reflect.DeepEqual(got.State.Fwd, []usernet.Forward{fwd}) || len(got.State.Forwards) != 1 || got.Config.Registered {
		t.Errorf("engine container after migration: %+v", got.State)
	}
	att, err := e.Attached()
	if err != nil || len(att) != 2 {
		t.Fatalf("attached %d records (%v), want web and side", len(att), err)
	}
	side, err := lookupAttachable(att, "ns:/run/netns/side")
	if err != nil {
		t.Fatal(err)
	}
	if side.Config.Name != "side" || !side.Config.Registered || side.Config.Net.Kind != runopts.ModeNS || !side.Config.Created.Equal(created) || !reflect.DeepEqual(side.State.Attachments, []Attachment{nsAtt}) {
		t.Errorf("registered namespace: %+v", side)
	}
	if list, _ := e.List(); len(list) != 1 || list[0].Config.Name != "web" {
		t.Errorf("List shows %d containers, want web only", len(list))
	}
	if _, err := lookupAttachable(att, "gone"); !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf("a record without networks was migrated: %v", err)
	}

	// Again (a second command): nothing changes.
	before := dumpRecords(t, e)
	if e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if after := dumpRecords(t, e); !reflect.DeepEqual(before, after) {
		t.Errorf("second run changed the records:\n%v\n%v", before, after)
	}

	// Killed between the merge and the rename: the next run merges the
	// same records again and renames.
	if err := os.Rename(legacy+MigratedSuffix, legacy); err != nil {
		t.Fatal(err)
	}
	if e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if after := dumpRecords(t, e); !reflect.DeepEqual(before, after) {
		t.Errorf("a repeated merge changed the records:\n%v\n%v", before, after)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("legacy database still in place after the repeated run: %v", err)
	}
}
