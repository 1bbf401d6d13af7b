package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/image/change"
	"github.com/berthnet/berth/internal/image/ref"
)

// containerRec returns the record of a container's root filesystem.
func (s *Store) containerRec(containerID string) (containerRecord, error) {
	var rec containerRecord
	err := s.view(func(tx *bolt.Tx) error {
		cs, err := allContainers(tx)
		for _, c := range cs {
			if c.ID == containerID {
				rec = c
				return err
			}
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("container %s has no root filesystem in the image store", containerID)
	})
	return rec, err
}

// Export writes a container's whole root filesystem as a tar (podman
// export). An overlay root filesystem that is not mounted is mounted for
// the copy and unmounted again.
func (s *Store) Export(containerID string, w io.Writer) error {
	rec, err := s.containerRec(containerID)
	if err != nil {
		return err
	}
	root := filepath.Join(s.containerDir(containerID), "rootfs")
	if rec.Driver == "overlay" {
		merged := filepath.Join(s.containerDir(containerID), "merged")
		if !mounted(merged) {
			if _, err := s.Mount(rec.ImageID, containerID); err != nil {
				return fmt.Errorf("export %s: %w", containerID, err)
			}
			defer func() { _ = s.Unmount(containerID) }()
		}
		root = merged
	}
	if err := writeTree(w, root, false); err != nil {
		return fmt.Errorf("export %s: %w", containerID, err)
	}
	return nil
}

// writeTree writes the tree under root as a tar: owners, modes, times,
// symlinks, hard links and devices. With overlayWhiteouts, overlayfs
// markers become OCI whiteouts (a 0:0 character device is .wh.NAME, an
// opaque directory gets .wh..wh..opq), as a layer diff needs.
func writeTree(w io.Writer, root string, overlayWhiteouts bool) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if overlayWhiteouts && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			dir, base := filepath.Split(rel)
			return tw.WriteHeader(&tar.Header{Name: dir + whiteoutPrefix + base, Typeflag: tar.TypeReg, Mode: 0o600})
		}
		h, err := treeHeader(p, rel, d, &st, links)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() && overlayWhiteouts && opaque(p) {
			return tw.WriteHeader(&tar.Header{Name: rel + "/" + whiteoutOpaque, Typeflag: tar.TypeReg, Mode: 0o600})
		}
		if h.Typeflag != tar.TypeReg || h.Size == 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, h.Size)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// treeHeader is the tar header of p; a second name of a hard-linked
// file becomes a link to the first.
func treeHeader(p, rel string, d fs.DirEntry, st *unix.Stat_t, links map[[2]uint64]string) (*tar.Header, error) {
	fi, err := d.Info()
	if err != nil {
		return nil, err
	}
	target := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = os.Readlink(p); err != nil {
			return nil, err
		}
	}
	h, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return nil, err
	}
	h.Name = rel
	if d.IsDir() {
		h.Name += "/"
	}
	h.Uid, h.Gid, h.Uname, h.Gname = int(st.Uid), int(st.Gid), "", ""
	h.Format = tar.FormatPAX
	if h.Typeflag == tar.TypeReg && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := links[key]; ok {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
		} else {
			links[key] = rel
		}
	}
	return h, nil
}

// opaque reports whether an overlay upper directory is opaque.
func opaque(p string) bool {
	buf := make([]byte, 4)
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, attr, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// CommitOptions tune Commit.
type CommitOptions struct {
	// Reference names the new image (a short name goes to localhost);
	// empty: no name.
	Reference string
	// Changes are Dockerfile instructions applied to the config.
	Changes []string
	// Message is the history comment; Author the image's author.
	Message, Author string
	// CreatedBy is the history entry's command (empty: "berth commit").
	CreatedBy string
	// ContainerConfig, when set, replaces the image config the container
	// started from (its command, environment...), before Changes.
	ContainerConfig *v1.Config
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	// Now is the creation time (zero: time.Now).
	Now time.Time
}

// commit makes an image of a container's root filesystem (podman
// commit): the container's image with the container's changes as one
// more layer (overlay), or one layer holding the whole root filesystem
// (copy driver, which keeps no separate changes).
func (s *Store) commit(ctx context.Context, containerID string, o CommitOptions) (*Image, error) {
	var names []string
	if o.Reference != "" {
		r, err := ref.ParseLocal(o.Reference)
		if err != nil {
			return nil, err
		}
		names = []string{r.String()}
	}
	rec, err := s.containerRec(containerID)
	if err != nil {
		return nil, err
	}
	base, _, err := s.V1Image(rec.ImageID)
	if errors.Is(err, ErrNotFound) {
		base, err = empty.Image, nil
	}
	if err != nil {
		return nil, err
	}
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	if o.ContainerConfig != nil {
		cf.Config = *o.ContainerConfig
	}
	if err := change.Apply(&cf.Config, o.Changes); err != nil {
		return nil, err
	}
	layerTar, err := s.containerLayer(rec)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", containerID, err)
	}
	defer os.Remove(layerTar)
	if rec.Driver != "overlay" {
		// The copy holds the whole tree: start from no layers.
		cf.RootFS.DiffIDs, cf.History = nil, nil
		if base, err = mutate.ConfigFile(empty.Image, cf); err != nil {
			return nil, err
		}
	}
	img, err := commitImage(base, cf, layerTar, o)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", containerID, err)
	}
	out, err := s.Add(ctx, img, names, o.Progress)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", containerID, err)
	}
	return out, nil
}

// containerLayer writes the container's changes (overlay: the upper
// directory; copy: the whole root filesystem) to a tar under tmp/.
func (s *Store) containerLayer(rec containerRecord) (string, error) {
	dir := filepath.Join(s.containerDir(rec.ID), "rootfs")
	if rec.Driver == "overlay" {
		dir = filepath.Join(s.containerDir(rec.ID), "diff")
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "commit-")
	if err != nil {
		return "", err
	}
	err = writeTree(f, dir, rec.Driver == "overlay")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// commitImage appends the layer in layerTar to base and sets the
// config, author, creation time and history.
func commitImage(base v1.Image, cf *v1.ConfigFile, layerTar string, o CommitOptions) (v1.Image, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	layer, err := tarball.LayerFromFile(layerTar)
	if err != nil {
		return nil, err
	}
	createdBy := o.CreatedBy
	if createdBy == "" {
		createdBy = "berth commit"
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: now}, CreatedBy: createdBy, Author: o.Author, Comment: o.Message,
	}})
	if err != nil {
		return nil, err
	}
	full, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	full = full.DeepCopy()
	full.Config = cf.Config
	full.Author, full.Created = o.Author, v1.Time{Time: now}
	if full.Architecture == "" {
		full.Architecture, full.OS = runtime.GOARCH, "linux"
	}
	return mutate.ConfigFile(img, full)
}

// prune removes the images no container uses: those without a name
// (dangling), or with all, every one. It returns the removed IDs.
func (s *Store) prune(all bool) ([]string, error) {
	unlock, err := s.lock(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var removed []string
	err = s.update(func(tx *bolt.Tx) error {
		recs, err := allImages(tx)
		if err != nil {
			return err
		}
		cs, err := allContainers(tx)
		if err != nil {
			return err
		}
		used := map[string]bool{}
		for _, c := range cs {
			used[c.ImageID] = true
		}
		for _, r := range recs {
			if used[r.ID] || (!all && len(r.Names) > 0) {
				continue
			}
			if err := tx.Bucket([]byte(bucketImages)).Delete([]byte(r.ID)); err != nil {
				return err
			}
			removed = append(removed, r.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune images: %w", err)
	}
	if len(removed) > 0 {
		return removed, s.gc()
	}
	return removed, nil
}
