package image_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/nettest"
)

// TestPrivilegedOverlayRootfs mounts a container's rootfs on overlayfs
// (in the suite's private mount namespace): the image's whiteouts hide
// lower files, writes go to the container's own layer, Unmount keeps
// them, RemoveRootfs deletes everything.
func TestPrivilegedOverlayRootfs(t *testing.T) {
	s := overlayStore(t)
	img, err := s.Add(context.Background(), twoLayerImage(t), []string{"localhost/ov:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The layer directories hold overlay's markers.
	var st unix.Stat_t
	gone := filepath.Join(s.Dir(), "layers", img.Layers[1][len("sha256:"):], "etc", "gone")
	if err := unix.Lstat(gone, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout marker %s: mode %o rdev %d err %v", gone, st.Mode, st.Rdev, err)
	}
	rootfs, err := s.Mount(img.ID, "bimg-ov1")
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
			t.Skipf("the kernel refused overlay here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveRootfs("bimg-ov1") })
	var sfs unix.Statfs_t
	if err := unix.Statfs(rootfs, &sfs); err != nil || sfs.Type != unix.OVERLAYFS_SUPER_MAGIC {
		t.Fatalf("rootfs %s is not overlayfs (type %x, %v)", rootfs, sfs.Type, err)
	}
	checkFlattened(t, rootfs)
	if again, err := s.Mount(img.ID, "bimg-ov1"); err != nil || again != rootfs {
		t.Errorf("second Mount = %s, %v", again, err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "new"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	upper := filepath.Join(filepath.Dir(rootfs), "diff", "etc", "new")
	if _, err := os.Stat(upper); err != nil {
		t.Errorf("write did not reach the container layer: %v", err)
	}
	if err := s.Unmount("bimg-ov1"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(rootfs, &sfs); err == nil && sfs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		t.Error("still mounted after Unmount")
	}
	if _, err := os.Stat(upper); err != nil {
		t.Errorf("Unmount lost the container layer: %v", err)
	}
	if _, err := s.Mount(img.ID, "bimg-ov1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc", "new")); err != nil {
		t.Errorf("remount lost the container's file: %v", err)
	}
	if err := s.RemoveRootfs("bimg-ov1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(rootfs)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container dir left: %v", err)
	}
}

// TestPrivilegedAutoDriver: the automatic driver gives a working rootfs,
// on overlay where the kernel allows it and as a copy where it refuses.
func TestPrivilegedAutoDriver(t *testing.T) {
	nettest.Privileged(t)
	s, err := image.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Add(context.Background(), twoLayerImage(t), []string{"localhost/auto:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := s.Mount(img.ID, "bimg-auto")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveRootfs("bimg-auto") })
	checkFlattened(t, rootfs)
	drv, _ := s.ContainerDriver("bimg-auto")
	if image.OverlaySupported() && drv != "overlay" {
		t.Logf("overlay supported but the container got %q (kernel refused the mount)", drv)
	}
	if err := s.RemoveRootfs("bimg-auto"); err != nil {
		t.Fatal(err)
	}
}

// TestPrivilegedHardlinkIntoLowerLayerFallsBack: a layer whose hard link
// points into a lower layer cannot be unpacked on its own for overlay;
// the automatic driver copies instead.
func TestPrivilegedHardlinkIntoLowerLayerFallsBack(t *testing.T) {
	nettest.Privileged(t)
	s, err := image.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	rootfs := mountHardlinkImage(t, s, "bimg-hl2")
	if b, err := os.ReadFile(filepath.Join(rootfs, "again")); err != nil || string(b) != "k" {
		t.Errorf("again = %q, %v", b, err)
	}
	if drv, _ := s.ContainerDriver("bimg-hl2"); drv != "copy" {
		t.Errorf("driver %q, want the copy fallback", drv)
	}
}

// TestPrivilegedOverlayManyLayers: more layers than fit in one page of
// mount options go through fsconfig's lowerdir+.
func TestPrivilegedOverlayManyLayers(t *testing.T) {
	s := overlayStore(t)
	img := empty.Image
	const n = 70
	for i := 0; i < n; i++ {
		var err error
		img, err = mutate.AppendLayers(img, tarLayer(t, [2]string{fmt.Sprintf("f%02d", i), fmt.Sprint(i)}))
		if err != nil {
			t.Fatal(err)
		}
	}
	stored, err := s.Add(context.Background(), img, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := s.Mount(stored.ID, "bimg-many")
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			t.Skipf("this kernel lacks overlay's lowerdir+ (Linux 6.8): %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveRootfs("bimg-many") })
	if drv, _ := s.ContainerDriver("bimg-many"); drv != "overlay" {
		t.Fatalf("driver %q", drv)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if b, err := os.ReadFile(filepath.Join(rootfs, fmt.Sprintf("f%02d", i))); err != nil || string(b) != fmt.Sprint(i) {
			t.Errorf("f%02d = %q, %v", i, b, err)
		}
	}
}

// overlayStore skips unless privileged with overlayfs, and opens a store
// that always mounts overlay.
func overlayStore(t *testing.T) *image.Store {
	t.Helper()
	nettest.Privileged(t)
	if !image.OverlaySupported() {
		t.Skip("overlayfs unavailable: no overlay in /proc/filesystems")
	}
	s, err := image.OpenWith(filepath.Join(t.TempDir(), "images"), image.Options{Driver: "overlay"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
