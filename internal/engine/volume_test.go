package engine

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/rollback"
	"github.com/berthnet/berth/internal/runopts"
)

func TestVolumeLifecycle(t *testing.T) {
	e := newTestEngine(t)
	v, err := e.CreateVolume(VolumeOptions{Name: "data", Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if !v.NeedsCopyUp || !v.NeedsChown || v.Driver != LocalDriver {
		t.Errorf("new volume: %+v", v)
	}
	if st, err := os.Stat(e.VolumePath("data")); err != nil || !st.IsDir() {
		t.Fatalf("data directory: %v", err)
	}
	if _, err := e.CreateVolume(VolumeOptions{Name: "data"}); !errors.Is(err, ErrVolumeExists) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := e.CreateVolume(VolumeOptions{Name: "../x"}); err == nil {
		t.Error("invalid name accepted")
	}
	anon, err := e.CreateVolume(VolumeOptions{})
	if err != nil || len(anon.Name) != 64 {
		t.Fatalf("random name: %+v %v", anon, err)
	}
	// "dat": no random (hex) name shares that prefix.
	if got, err := e.GetVolume("dat"); err != nil || got.Name != "data" || !reflect.DeepEqual(got.Labels, v.Labels) {
		t.Errorf("GetVolume by prefix: %+v %v", got, err)
	}
	if _, err := e.GetVolume("nope"); !errors.Is(err, ErrNoSuchVolume) {
		t.Errorf("missing volume: %v", err)
	}
	// A container using it keeps it from rm and prune.
	c, _, err := e.Create(CreateOptions{Name: "user", Rootfs: t.TempDir(), Args: []string{"true"}, Net: noNet(t),
		Mounts: []runopts.Mount{{Type: runopts.MountVolume, Source: "data", Destination: "/data"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RemoveVolume("data", false); !errors.Is(err, ErrVolumeInUse) || !strings.Contains(err.Error(), c.Config.ID) {
		t.Errorf("rm of a volume in use: %v", err)
	}
	removed, err := e.PruneVolumes()
	if err != nil || !reflect.DeepEqual(removed, []string{anon.Name}) {
		t.Errorf("prune: %v %v", removed, err)
	}
	// -f removes the container first.
	if err := e.RemoveVolume("data", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get("user"); !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf("container survives volume rm -f: %v", err)
	}
	if _, err := os.Stat(e.VolumeDir("data")); !os.IsNotExist(err) {
		t.Errorf("volume directory left: %v", err)
	}
}

func noNet(t *testing.T) runopts.NetMode {
	t.Helper()
	n, err := runopts.ParseNetworks([]string{"none"})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCreateMounts: named volumes are created on first use, anonymous
// ones named, bind sources made absolute and checked; rm -v removes the
// anonymous volumes only; a failed create leaves no volume behind.
func TestCreateMounts(t *testing.T) {
	e := newTestEngine(t)
	host := t.TempDir()
	ms := []runopts.Mount{
		{Type: runopts.MountVolume, Source: "named", Destination: "/n"},
		{Type: runopts.MountVolume, Destination: "/a", Anonymous: true},
		{Type: runopts.MountBind, Source: host, Destination: "/h", Options: []string{"ro"}},
		{Type: runopts.MountTmpfs, Destination: "/t", Options: []string{"rw"}},
	}
	c, _, err := e.Create(CreateOptions{Name: "c", Rootfs: t.TempDir(), Args: []string{"true"}, Net: noNet(t), Mounts: ms})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Config.Mounts
	if len(got) != 4 || got[0].Source != "named" || len(got[1].Source) != 64 || !got[1].Anonymous {
		t.Fatalf("mounts: %+v", got)
	}
	vols, _ := e.Volumes()
	if len(vols) != 2 {
		t.Errorf("volumes: %d", len(vols))
	}
	if _, err := e.RemoveWith("c", false, true); err != nil {
		t.Fatal(err)
	}
	if vols, _ := e.Volumes(); len(vols) != 1 || vols[0].Name != "named" {
		t.Errorf("after rm -v: %+v", vols)
	}
	// A missing bind source fails the create and rolls back the
	// anonymous volume it made.
	bad := []runopts.Mount{{Type: runopts.MountVolume, Destination: "/a", Anonymous: true},
		{Type: runopts.MountBind, Source: filepath.Join(host, "missing"), Destination: "/h"}}
	if _, _, err := e.Create(CreateOptions{Rootfs: t.TempDir(), Args: []string{"true"}, Net: noNet(t), Mounts: bad}); err == nil || !strings.Contains(err.Error(), "statfs") {
		t.Errorf("missing bind source: %v", err)
	}
	if vols, _ := e.Volumes(); len(vols) != 1 {
		t.Errorf("volumes after a failed create: %+v", vols)
	}
}

// TestImageVolumes: every VOLUME of the image without a mount gets an
// anonymous volume; duplicates are refused.
func TestImageVolumes(t *testing.T) {
	e := newTestEngine(t)
	var cfg Config
	var rb rollback.Stack
	given := []runopts.Mount{{Type: runopts.MountTmpfs, Destination: "/cache"}}
	if err := e.prepareMounts(&cfg, given, []string{"/data/", "/cache"}, &rb); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mounts) != 2 || cfg.Mounts[1].Destination != "/data" || !cfg.Mounts[1].Anonymous {
		t.Errorf("mounts: %+v", cfg.Mounts)
	}
	dup := append(given, runopts.Mount{Type: runopts.MountTmpfs, Destination: "/cache"})
	if err := e.prepareMounts(&cfg, dup, nil, &rb); err == nil || !strings.Contains(err.Error(), "duplicate mount destination") {
		t.Errorf("duplicate: %v", err)
	}
}

func TestMountOptions(t *testing.T) {
	for _, tc := range []struct {
		m    runopts.Mount
		want []string
	}{
		{runopts.Mount{Type: runopts.MountVolume}, []string{"nosuid", "nodev", "rbind", "rprivate"}},
		{runopts.Mount{Type: runopts.MountVolume, Options: []string{"suid", "ro", "nocopy", "Z"}}, []string{"nodev", "rbind", "suid", "ro", "rprivate"}},
		{runopts.Mount{Type: runopts.MountBind, Options: []string{"bind", "rshared"}}, []string{"bind", "rshared"}},
	} {
		if got := MountOptions(tc.m); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("MountOptions(%+v) = %v, want %v", tc.m, got, tc.want)
		}
	}
	if got := tmpfsOptions([]string{"rw", "size=1m"}); !reflect.DeepEqual(got, []string{"rw", "size=1m", "tmpcopyup"}) {
		t.Errorf("tmpfs: %v", got)
	}
	if got := tmpfsOptions([]string{"rw", "notmpcopyup"}); !reflect.DeepEqual(got, []string{"rw"}) {
		t.Errorf("tmpfs notmpcopyup: %v", got)
	}
}

// TestVolumeRecordValidated: a broken record is an error naming it, not
// a volume.
func TestVolumeRecordValidated(t *testing.T) {
	e := newTestEngine(t)
	if _, err := e.CreateVolume(VolumeOptions{Name: "ok"}); err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string]string{
		"bad1": `{"name":"../etc","driver":"local","created":"2026-01-01T00:00:00Z"}`,
		"bad2": `{"name":"x","driver":"nfs","created":"2026-01-01T00:00:00Z"}`,
		"bad3": `{"name":"x","driver":"local"}`,
		"bad4": `not json`,
	} {
		err := e.updateVolumes(func(b *bolt.Bucket) error { return b.Put([]byte(name), []byte(rec)) })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Volumes(); err == nil {
			t.Errorf("%s accepted", rec)
		}
		_ = e.updateVolumes(func(b *bolt.Bucket) error { return b.Delete([]byte(name)) })
	}
}

// TestFirstUseCopyUp: a new volume gets the image's content at its mount
// point once (modes and symbolic links kept, links never followed); a
// mount point that is a link out of the root filesystem resolves inside
// it.
func TestFirstUseCopyUp(t *testing.T) {
	e := newTestEngine(t)
	rootfs := t.TempDir()
	mustWrite := func(p, content string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(rootfs, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, p), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("seed/hello", "seeded\n", 0o640)
	mustWrite("seed/sub/deep", "deep\n", 0o755)
	if err := os.Symlink("/etc/passwd", filepath.Join(rootfs, "seed", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"v", "esc"} {
		if _, err := e.CreateVolume(VolumeOptions{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if err := e.firstUse(runopts.Mount{Type: runopts.MountVolume, Source: "v", Destination: "/seed"}, rootfs, uid, gid); err != nil {
		t.Fatal(err)
	}
	data := e.VolumePath("v")
	if b, err := os.ReadFile(filepath.Join(data, "sub", "deep")); err != nil || string(b) != "deep\n" {
		t.Errorf("copied file: %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(data, "hello")); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("mode kept: %v %v", st, err)
	}
	if l, err := os.Readlink(filepath.Join(data, "link")); err != nil || l != "/etc/passwd" {
		t.Errorf("link kept: %q %v", l, err)
	}
	if v, _ := e.volume("v"); v.NeedsCopyUp || v.NeedsChown {
		t.Errorf("flags after first use: %+v", v)
	}
	// Not again: a file removed from the volume stays removed.
	if err := os.Remove(filepath.Join(data, "hello")); err != nil {
		t.Fatal(err)
	}
	if err := e.firstUse(runopts.Mount{Type: runopts.MountVolume, Source: "v", Destination: "/seed"}, rootfs, uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "hello")); !os.IsNotExist(err) {
		t.Errorf("copied up twice: %v", err)
	}
	// /escape -> /etc is the root filesystem's etc (absent), not the host's.
	if err := e.firstUse(runopts.Mount{Type: runopts.MountVolume, Source: "esc", Destination: "/escape"}, rootfs, uid, gid); err != nil {
		t.Fatal(err)
	}
	if empty, err := isEmptyDir(e.VolumePath("esc")); err != nil || !empty {
		t.Errorf("host content copied through a link: %v %v", empty, err)
	}
}
