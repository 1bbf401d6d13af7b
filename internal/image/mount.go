package image

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

var validContainerID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

var overlayOnce = sync.OnceValue(func() bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 && fields[len(fields)-1] == "overlay" {
			return true
		}
	}
	return false
})

// OverlaySupported reports whether this process can mount overlayfs: it
// runs as root and the kernel lists overlay in /proc/filesystems.
func OverlaySupported() bool { return os.Geteuid() == 0 && overlayOnce() }

// overlayWanted reports whether new containers get overlay (so layers are
// unpacked for it).
func (s *Store) overlayWanted() bool {
	switch s.driver {
	case "overlay":
		return true
	case "copy":
		return false
	}
	return OverlaySupported()
}

func (s *Store) containerDir(id string) string { return filepath.Join(s.dir, "containers", id) }

// Mount returns the writable root filesystem of container containerID on
// image imageID (an ID or any name Lookup accepts), creating the
// container layer and mounting it as needed; calling it again returns the
// same root filesystem. The store records that the container uses the
// image until RemoveRootfs.
func (s *Store) Mount(imageID, containerID string) (rootfs string, err error) {
	if !validContainerID.MatchString(containerID) {
		return "", fmt.Errorf("mount rootfs: container ID %q: want letters, digits, _ . - (at most 128)", containerID)
	}
	unlock, err := s.lock(false)
	if err != nil {
		return "", err
	}
	defer unlock()

	var rec containerRecord
	created := false
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketContainers))
		if v := b.Get([]byte(containerID)); v != nil {
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			recs, err := allImages(tx)
			if err != nil {
				return err
			}
			if img, err := lookup(recs, imageID); err == nil && img.ID != rec.ImageID {
				return fmt.Errorf("container %s already has a root filesystem from image %s", containerID, rec.ImageID[:12])
			}
			return nil
		}
		recs, err := allImages(tx)
		if err != nil {
			return err
		}
		img, err := lookup(recs, imageID)
		if err != nil {
			return err
		}
		driver := "copy"
		if s.overlayWanted() {
			driver = "overlay"
		}
		rec = containerRecord{ID: containerID, ImageID: img.ID, Layers: img.Layers, Driver: driver, Created: time.Now().UTC()}
		created = true
		return putJSON(tx, bucketContainers, containerID, rec)
	})
	if err != nil {
		return "", fmt.Errorf("mount rootfs of %s: %w", containerID, err)
	}
	rootfs, err = s.mount(&rec)
	if err != nil && created {
		_ = os.RemoveAll(s.containerDir(containerID))
		_ = s.update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketContainers)).Delete([]byte(containerID))
		})
	}
	if err != nil {
		return "", fmt.Errorf("mount rootfs of %s: %w", containerID, err)
	}
	return rootfs, nil
}

func (s *Store) mount(rec *containerRecord) (string, error) {
	cdir := s.containerDir(rec.ID)
	if rec.Driver == "overlay" {
		p, err := s.mountOverlay(rec, cdir)
		if err == nil || s.driver == "overlay" {
			return p, err
		}
		// The kernel refused (no overlay in a user namespace, an upper
		// directory on a filesystem overlay cannot use...): copy instead.
		if err := os.RemoveAll(cdir); err != nil {
			return "", err
		}
		rec.Driver = "copy"
		if err := s.update(func(tx *bolt.Tx) error { return putJSON(tx, bucketContainers, rec.ID, rec) }); err != nil {
			return "", err
		}
	}
	return s.mountCopy(rec, cdir)
}

func (s *Store) mountOverlay(rec *containerRecord, cdir string) (string, error) {
	merged := filepath.Join(cdir, "merged")
	if mounted(merged) {
		return merged, nil
	}
	var lowers []string
	for i := len(rec.Layers) - 1; i >= 0; i-- {
		d, err := s.layerDir(rec.Layers[i])
		if err != nil {
			return "", err
		}
		lowers = append(lowers, d)
	}
	for _, d := range []string{"diff", "work", "merged", "empty"} {
		if err := os.MkdirAll(filepath.Join(cdir, d), 0o755); err != nil {
			return "", err
		}
	}
	if len(lowers) == 0 {
		lowers = []string{filepath.Join(cdir, "empty")}
	}
	for _, l := range lowers {
		if strings.ContainsAny(l, ":,") {
			return "", fmt.Errorf("overlay: layer path %s contains ':' or ','", l)
		}
	}
	upper, work := filepath.Join(cdir, "diff"), filepath.Join(cdir, "work")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"), upper, work)
	if len(opts) < os.Getpagesize() {
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			return "", fmt.Errorf("mount overlay on %s: %w", merged, err)
		}
		return merged, nil
	}
	// Too many layers for one option page: give them one by one through
	// the new mount API (lowerdir+, Linux 6.8).
	if err := mountOverlayFsconfig(merged, lowers, upper, work); err != nil {
		return "", fmt.Errorf("mount overlay with %d layers on %s: %w", len(lowers), merged, err)
	}
	return merged, nil
}

// mountOverlayFsconfig mounts overlayfs with fsopen/fsconfig/fsmount.
func mountOverlayFsconfig(target string, lowers []string, upper, work string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fd)
	for _, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			return fmt.Errorf("fsconfig lowerdir+ %s: %w", l, err)
		}
	}
	if err := unix.FsconfigSetString(fd, "upperdir", upper); err != nil {
		return fmt.Errorf("fsconfig upperdir: %w", err)
	}
	if err := unix.FsconfigSetString(fd, "workdir", work); err != nil {
		return fmt.Errorf("fsconfig workdir: %w", err)
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

func (s *Store) mountCopy(rec *containerRecord, cdir string) (string, error) {
	rootfs := filepath.Join(cdir, "rootfs")
	if _, err := os.Stat(rootfs); err == nil {
		return rootfs, nil
	}
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "rootfs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	for _, l := range rec.Layers {
		p, err := s.blobPath(l)
		if err != nil {
			return "", err
		}
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", l, err)
		}
		_, err = Unpack(f, tmp, UnpackOptions{Whiteouts: ApplyWhiteouts, Privileged: os.Geteuid() == 0})
		f.Close()
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", l, err)
		}
	}
	if err := os.Rename(tmp, rootfs); err != nil {
		return "", err
	}
	return rootfs, nil
}

// mounted reports whether p is a mount point (its device differs from
// its parent's).
func mounted(p string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(p, &st) != nil || unix.Lstat(filepath.Dir(p), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}

// Unmount unmounts a container's root filesystem and keeps its layer
// (the container's changes). It is a no-op for copies and for containers
// without a layer.
func (s *Store) Unmount(containerID string) error {
	if !validContainerID.MatchString(containerID) {
		return fmt.Errorf("unmount rootfs: container ID %q is not valid", containerID)
	}
	merged := filepath.Join(s.containerDir(containerID), "merged")
	if !mounted(merged) {
		return nil
	}
	err := unix.Unmount(merged, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(merged, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount rootfs of %s: %w", containerID, err)
	}
	return nil
}

// RemoveRootfs unmounts and deletes a container's layer and forgets that
// the container uses its image. Removing a container without a layer is
// not an error.
func (s *Store) RemoveRootfs(containerID string) error {
	if err := s.Unmount(containerID); err != nil {
		return err
	}
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.RemoveAll(s.containerDir(containerID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove rootfs of %s: %w", containerID, err)
	}
	if err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketContainers)).Delete([]byte(containerID))
	}); err != nil {
		return fmt.Errorf("remove rootfs of %s: %w", containerID, err)
	}
	return s.gc()
}

// ContainerDriver returns how a container's root filesystem is made
// ("overlay" or "copy"), "" when it has none.
func (s *Store) ContainerDriver(containerID string) (string, error) {
	var driver string
	err := s.view(func(tx *bolt.Tx) error {
		cs, err := allContainers(tx)
		i := slices.IndexFunc(cs, func(c containerRecord) bool { return c.ID == containerID })
		if i >= 0 {
			driver = cs[i].Driver
		}
		return err
	})
	return driver, err
}

// Reset unmounts every container root filesystem and deletes every image,
// layer and container layer (berth system reset).
func (s *Store) Reset() error {
	var ids []string
	if err := s.view(func(tx *bolt.Tx) error {
		cs, err := allContainers(tx)
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return err
	}); err != nil {
		return fmt.Errorf("reset image store: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := s.Unmount(id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("reset image store: %w", errors.Join(errs...))
	}
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.update(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketImages, bucketContainers} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("reset image store: %w", err)
	}
	for _, d := range []string{"blobs/sha256", "layers", "containers", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(s.dir, d))
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(s.dir, d, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("reset image store: %w", errors.Join(errs...))
	}
	return nil
}
