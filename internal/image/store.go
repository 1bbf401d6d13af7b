// Package image is berth's image store: images pulled from OCI and Docker
// registries (go-containerregistry), loaded from docker-archive and OCI
// layout files, or imported from rootfs tarballs; their layers unpacked
// safely; and the writable root filesystems of containers, on overlayfs
// when the kernel allows it and as a copy of the flattened layers
// otherwise.
//
// On disk, under the store directory (<root>/images):
//
//	meta.db              bbolt: image records and the containers using them
//	store.lock           flock: shared while adding or mounting, exclusive to delete
//	blobs/sha256/HEX     configs, manifests and uncompressed layer tars, by digest
//	layers/HEX           a layer unpacked for overlayfs (by its diff ID)
//	containers/ID/       a container's layer: diff+work+merged, or rootfs (copy)
//	tmp/                 work in progress; renamed into place when complete
//
// Every file and directory is written under tmp/ and renamed into place,
// and the metadata changes in one bbolt transaction, so a crash leaves
// either the old state or the new one (plus garbage under tmp/).
package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/boltfile"
	"github.com/berthnet/berth/internal/image/ref"
)

// Errors callers branch on.
var (
	// ErrNotFound: no image has that name or ID.
	ErrNotFound = errors.New("image not known")
	// ErrInUse: a container's root filesystem uses the image.
	ErrInUse = errors.New("image is in use by a container")
	// ErrAmbiguous: a short ID matches several images.
	ErrAmbiguous = errors.New("short ID matches more than one image")
)

// Image is an image in the store.
type Image struct {
	// ID is the config digest's hex (64 characters), as Podman's image ID.
	ID string
	// Names are full references: docker.io/library/busybox:latest.
	Names []string
	// Digest is the manifest digest ("sha256:...").
	Digest string
	// Created is when the image was built (from its config).
	Created time.Time
	// Size is the sum of the uncompressed layer sizes.
	Size   int64
	Config Config
	// Layers are the diff IDs, bottom first.
	Layers []string
	// RepoDigests are repository@digest for every name's repository.
	RepoDigests []string
	// Architecture and OS come from the config.
	Architecture, OS string
	// Intermediate marks the image of a build step; lists leave it out
	// while it has no name (see Hidden).
	Intermediate bool `json:"intermediate,omitempty"`
}

// Hidden reports whether image lists leave the image out unless asked
// for all (images -a): a build step's image without a name, as Docker
// and Podman hide intermediate images.
func (img *Image) Hidden() bool { return img.Intermediate && len(img.Names) == 0 }

// SetIntermediate marks image id as a build step's image, or not.
func (s *Store) SetIntermediate(id string, intermediate bool) error {
	err := s.update(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketImages)).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		var rec record
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		if rec.Intermediate == intermediate {
			return nil
		}
		rec.Intermediate = intermediate
		return putJSON(tx, bucketImages, id, rec)
	})
	if err != nil {
		return fmt.Errorf("image %s: %w", id, err)
	}
	return nil
}

// Config is the part of the image configuration a container starts with.
type Config struct {
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
	StopSignal           string
	// ExposedPorts are "80/tcp" keys, sorted.
	ExposedPorts []string
	Labels       map[string]string
	Volumes      []string
}

// Options tune a store.
type Options struct {
	// Driver forces "overlay" or "copy"; "" uses overlay when the kernel
	// allows it and copies otherwise.
	Driver string
}

// Store is an image store in one directory. It is safe for concurrent
// use by goroutines and processes.
type Store struct {
	dir    string
	driver string
	// onEvent is told of each change to the images (see SetEvents).
	onEvent func(Event)
}

const (
	bucketImages     = "images"
	bucketContainers = "containers"
)

// Open opens (creating if needed) the store in dir (<root>/images).
func Open(dir string) (*Store, error) { return OpenWith(dir, Options{}) }

// OpenWith opens the store in dir with options.
func OpenWith(dir string, o Options) (*Store, error) {
	switch o.Driver {
	case "", "overlay", "copy":
	default:
		return nil, fmt.Errorf("storage driver %q is not supported, valid: overlay, copy", o.Driver)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: abs, driver: o.Driver}
	for _, d := range []string{"blobs/sha256", "layers", "containers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	if err := s.update(func(*bolt.Tx) error { return nil }); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	s.cleanTmp()
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// cleanTmp removes work left by crashed processes (older than a day, so
// that work in progress in another process is left alone).
func (s *Store) cleanTmp() {
	ents, _ := os.ReadDir(filepath.Join(s.dir, "tmp"))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(filepath.Join(s.dir, "tmp", e.Name()))
		}
	}
}

// lock takes the store lock, shared or exclusive, until unlock is called.
func (s *Store) lock(exclusive bool) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "store.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	return func() { f.Close() }, nil
}

func (s *Store) openDB() (*bolt.DB, error) {
	return boltfile.Open(filepath.Join(s.dir, "meta.db"), 0o600, &bolt.Options{Timeout: time.Minute})
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	db, err := s.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketImages, bucketContainers} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	db, err := s.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}

// record is an image as stored in meta.db.
type record struct {
	Image
	// ConfigDigest and ManifestDigest name the blobs.
	ConfigDigest string `json:"configDigest"`
	Added        time.Time
}

// containerRecord is a container layer: which image (and layers) it sits on.
type containerRecord struct {
	ID      string
	ImageID string
	Layers  []string
	// Driver is "overlay" or "copy".
	Driver  string
	Created time.Time
}

func allImages(tx *bolt.Tx) ([]record, error) { return all[record](tx, bucketImages) }

func allContainers(tx *bolt.Tx) ([]containerRecord, error) {
	return all[containerRecord](tx, bucketContainers)
}

// all decodes every record of a bucket.
func all[T any](tx *bolt.Tx, bucket string) ([]T, error) {
	var out []T
	b := tx.Bucket([]byte(bucket))
	if b == nil {
		return nil, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var r T
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("%s record %s: %w", bucket, k, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func putJSON(tx *bolt.Tx, bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bucket)).Put([]byte(key), data)
}

// List returns every image, newest first.
func (s *Store) List() ([]Image, error) {
	var recs []record
	if err := s.view(func(tx *bolt.Tx) error {
		var err error
		recs, err = allImages(tx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Image)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

var idPrefix = regexp.MustCompile(`^(sha256:)?[0-9a-f]{3,64}$`)

// Lookup finds an image by name (normalised as Podman does: busybox is
// docker.io/library/busybox:latest, banner finds localhost/banner:latest),
// name:tag, name@digest, or full or short (at least 3 hex) ID.
func (s *Store) Lookup(name string) (*Image, error) {
	var found *Image
	err := s.view(func(tx *bolt.Tx) error {
		recs, err := allImages(tx)
		if err != nil {
			return err
		}
		r, err := lookup(recs, name)
		if err != nil {
			return err
		}
		found = &r.Image
		return nil
	})
	return found, err
}

// lookup resolves a name among records; byName reports whether the name
// (rather than the ID) matched.
func lookup(recs []record, name string) (record, error) {
	r, _, err := lookupHow(recs, name)
	return r, err
}

func lookupHow(recs []record, name string) (rec record, matchedName string, err error) {
	if name == "" {
		return record{}, "", fmt.Errorf("empty image name: %w", ErrNotFound)
	}
	// Full names first.
	for _, c := range ref.Candidates(name) {
		full := c.String()
		for _, r := range recs {
			if slices.Contains(r.Names, full) {
				return r, full, nil
			}
			if c.Digest != "" && c.Tag == "" && r.Digest == c.Digest {
				for _, n := range r.Names {
					if p, err := ref.Parse(n); err == nil && p.Repository() == c.Repository() {
						return r, "", nil
					}
				}
			}
		}
	}
	// IDs.
	if idPrefix.MatchString(name) {
		id := strings.TrimPrefix(name, "sha256:")
		var hits []record
		for _, r := range recs {
			if strings.HasPrefix(r.ID, id) {
				hits = append(hits, r)
			}
		}
		if len(hits) == 1 {
			return hits[0], "", nil
		}
		if len(hits) > 1 {
			return record{}, "", fmt.Errorf("%s: %w", name, ErrAmbiguous)
		}
	}
	// Short names match any registry: "busybox" finds
	// quay.io/prometheus/busybox:latest when nothing closer exists.
	if ref.IsShort(name) {
		if p, err := ref.ParseLocal(name); err == nil {
			suffix := "/" + p.Path
			for _, r := range recs {
				for _, n := range r.Names {
					q, err := ref.Parse(n)
					if err != nil {
						continue
					}
					if strings.HasSuffix("/"+q.Path, suffix) && q.Tag == p.Tag && q.Digest == p.Digest {
						return r, n, nil
					}
				}
			}
		}
	}
	return record{}, "", fmt.Errorf("%s: %w", name, ErrNotFound)
}

// blobPath is the file of a blob digest ("sha256:HEX").
func (s *Store) blobPath(digest string) (string, error) {
	h, err := v1.NewHash(digest)
	if err != nil || h.Algorithm != "sha256" {
		return "", fmt.Errorf("bad blob digest %q", digest)
	}
	return filepath.Join(s.dir, "blobs", "sha256", h.Hex), nil
}

// writeBlob stores r under digest unless present, verifying the content;
// it returns the blob's size.
func (s *Store) writeBlob(digest string, r io.Reader) (int64, error) {
	dst, err := s.blobPath(digest)
	if err != nil {
		return 0, err
	}
	if fi, err := os.Stat(dst); err == nil {
		return fi.Size(), nil
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write blob %s: %w", digest, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return 0, fmt.Errorf("write blob %s: content has digest %s", digest, got)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return 0, fmt.Errorf("write blob %s: %w", digest, err)
	}
	// The rename is durable before any record refers to the blob.
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return 0, fmt.Errorf("write blob %s: %w", digest, err)
	}
	return n, nil
}

// ReadBlob returns the content of a stored blob (configs and manifests).
func (s *Store) ReadBlob(digest string) ([]byte, error) {
	p, err := s.blobPath(digest)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// ConfigFile returns an image's full OCI configuration.
func (s *Store) ConfigFile(id string) (*v1.ConfigFile, error) {
	var rec record
	if err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketImages)).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%s: %w", id, ErrNotFound)
		}
		return json.Unmarshal(v, &rec)
	}); err != nil {
		return nil, err
	}
	data, err := s.ReadBlob(rec.ConfigDigest)
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", id, err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return nil, fmt.Errorf("parse config of %s: %w", id, err)
	}
	return &cf, nil
}

// Containers returns the IDs of the containers whose root filesystem
// uses the image.
func (s *Store) Containers(imageID string) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		cs, err := allContainers(tx)
		for _, c := range cs {
			if c.ImageID == imageID {
				out = append(out, c.ID)
			}
		}
		return err
	})
	sort.Strings(out)
	return out, err
}

// RemoveResult says what Remove did.
type RemoveResult struct {
	Untagged []string
	// Deleted is the ID of the deleted image ("" when only untagged).
	Deleted string
}

// remove removes the image name refers to, as podman rmi does: a name of
// an image with other names is only untagged, and its ID is refused
// unless force; otherwise the image goes,
// unless a container uses it (ErrInUse) and force is false. With force
// the image record goes and its layers stay until the last container
// using them is removed.
func (s *Store) remove(name string, force bool) (RemoveResult, error) {
	unlock, err := s.lock(true)
	if err != nil {
		return RemoveResult{}, err
	}
	defer unlock()
	var res RemoveResult
	err = s.update(func(tx *bolt.Tx) error {
		recs, err := allImages(tx)
		if err != nil {
			return err
		}
		r, matched, err := lookupHow(recs, name)
		if err != nil {
			return err
		}
		if matched != "" && len(r.Names) > 1 {
			r.Names = slices.DeleteFunc(r.Names, func(n string) bool { return n == matched })
			r.RepoDigests = repoDigests(r.Names, r.Digest)
			res.Untagged = []string{matched}
			return putJSON(tx, bucketImages, r.ID, r)
		}
		if matched == "" && len(r.Names) > 1 && !force {
			return fmt.Errorf("unable to delete image %s by ID with more than one name (%s): please force removal",
				r.ID[:12], strings.Join(r.Names, ", "))
		}
		cs, err := allContainers(tx)
		if err != nil {
			return err
		}
		var users []string
		for _, c := range cs {
			if c.ImageID == r.ID {
				users = append(users, c.ID)
			}
		}
		if len(users) > 0 && !force {
			return fmt.Errorf("image used by %s: %w", strings.Join(users, ", "), ErrInUse)
		}
		res.Untagged = r.Names
		res.Deleted = r.ID
		return tx.Bucket([]byte(bucketImages)).Delete([]byte(r.ID))
	})
	if err != nil {
		return RemoveResult{}, err
	}
	if res.Deleted != "" {
		if err := s.gc(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// gc deletes blobs and layer directories no image or container refers
// to. The caller holds the exclusive lock.
func (s *Store) gc() error {
	keep := map[string]bool{}
	err := s.view(func(tx *bolt.Tx) error {
		recs, err := allImages(tx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			keep[strings.TrimPrefix(r.ConfigDigest, "sha256:")] = true
			keep[strings.TrimPrefix(r.Digest, "sha256:")] = true
			for _, l := range r.Layers {
				keep[strings.TrimPrefix(l, "sha256:")] = true
			}
		}
		cs, err := allContainers(tx)
		for _, c := range cs {
			for _, l := range c.Layers {
				keep[strings.TrimPrefix(l, "sha256:")] = true
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	var errs []error
	for _, sub := range []string{"blobs/sha256", "layers"} {
		ents, err := os.ReadDir(filepath.Join(s.dir, sub))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range ents {
			if !keep[e.Name()] {
				if err := os.RemoveAll(filepath.Join(s.dir, sub, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// repoDigests gives repository@digest for each distinct repository.
func repoDigests(names []string, digest string) []string {
	var out []string
	for _, n := range names {
		p, err := ref.Parse(n)
		if err != nil || digest == "" {
			continue
		}
		rd := p.Repository() + "@" + digest
		if !slices.Contains(out, rd) {
			out = append(out, rd)
		}
	}
	return out
}

// configOf converts an OCI configuration.
func configOf(c v1.Config) Config {
	out := Config{
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir,
		User: c.User, StopSignal: c.StopSignal, Labels: c.Labels,
	}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	sort.Strings(out.ExposedPorts)
	for v := range c.Volumes {
		out.Volumes = append(out.Volumes, v)
	}
	sort.Strings(out.Volumes)
	return out
}

// tag adds name (normalised as a local name: banner is
// localhost/banner:latest) to the image target refers to; the name moves
// from any image that had it.
func (s *Store) tag(target, name string) (string, error) {
	r, err := ref.ParseLocal(name)
	if err != nil {
		return "", err
	}
	full := r.String()
	err = s.update(func(tx *bolt.Tx) error {
		recs, err := allImages(tx)
		if err != nil {
			return err
		}
		img, err := lookup(recs, target)
		if err != nil {
			return err
		}
		for _, o := range recs {
			if o.ID == img.ID || !slices.Contains(o.Names, full) {
				continue
			}
			o.Names = slices.DeleteFunc(o.Names, func(n string) bool { return n == full })
			o.RepoDigests = repoDigests(o.Names, o.Digest)
			if err := putJSON(tx, bucketImages, o.ID, o); err != nil {
				return err
			}
		}
		if !slices.Contains(img.Names, full) {
			img.Names = append(img.Names, full)
		}
		img.RepoDigests = repoDigests(img.Names, img.Digest)
		return putJSON(tx, bucketImages, img.ID, img)
	})
	if err != nil {
		return "", fmt.Errorf("tag %s: %w", target, err)
	}
	return full, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
