package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Add stores img under names (full references, already normalised):
// each layer's uncompressed tar as a blob (skipped when present), the
// layer unpacked for overlayfs when this store uses it, then the config,
// the manifest and the record, in one transaction. Names move from any
// image that had them. Progress lines go to progress (may be nil).
func (s *Store) Add(ctx context.Context, img v1.Image, names []string, progress io.Writer) (*Image, error) {
	if progress == nil {
		progress = io.Discard
	}
	unlock, err := s.lock(false)
	if err != nil {
		return nil, err
	}
	defer unlock()

	p, err := readImageParts(img)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(progress, "Getting image source signatures")
	size, diffIDs, err := s.storeLayers(ctx, p, progress)
	if err != nil {
		return nil, err
	}
	if err := s.storeConfigAndManifest(p, progress); err != nil {
		return nil, err
	}
	// Like Podman, the size counts the config and manifest too.
	size += int64(len(p.rawCfg) + len(p.rawManifest))

	rec := record{
		Image: Image{
			ID: p.cfgName.Hex, Digest: p.manifestDigest.String(), Created: p.cf.Created.Time, Size: size,
			Config: configOf(p.cf.Config), Layers: diffIDs, Architecture: p.cf.Architecture, OS: p.cf.OS,
		},
		ConfigDigest: p.cfgName.String(),
		Added:        time.Now().UTC(),
	}
	if err := s.recordImage(&rec, names); err != nil {
		return nil, fmt.Errorf("record image: %w", err)
	}
	return &rec.Image, nil
}

// imageParts is what Add reads from an image before storing it.
type imageParts struct {
	cf             *v1.ConfigFile
	cfgName        v1.Hash
	rawCfg         []byte
	manifestDigest v1.Hash
	rawManifest    []byte
	layers         []v1.Layer
}

// readImageParts reads img's config, manifest and layers, and checks
// that the config lists one diff ID per layer.
func readImageParts(img v1.Image) (*imageParts, error) {
	var p imageParts
	var err error
	if p.cf, err = img.ConfigFile(); err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	if p.cfgName, err = img.ConfigName(); err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	if p.rawCfg, err = img.RawConfigFile(); err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	if p.manifestDigest, err = img.Digest(); err != nil {
		return nil, fmt.Errorf("read image manifest: %w", err)
	}
	if p.rawManifest, err = img.RawManifest(); err != nil {
		return nil, fmt.Errorf("read image manifest: %w", err)
	}
	if p.layers, err = img.Layers(); err != nil {
		return nil, fmt.Errorf("read image layers: %w", err)
	}
	if len(p.layers) != len(p.cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image has %d layers but its config lists %d diff IDs", len(p.layers), len(p.cf.RootFS.DiffIDs))
	}
	return &p, nil
}

// storeLayers stores each layer as a blob (and unpacked, when this store
// uses overlayfs), returning their total size and diff IDs in order.
func (s *Store) storeLayers(ctx context.Context, p *imageParts, progress io.Writer) (int64, []string, error) {
	unpack := s.overlayWanted()
	var size int64
	var diffIDs []string
	for i, l := range p.layers {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		diffID := p.cf.RootFS.DiffIDs[i].String()
		digest, err := l.Digest()
		if err != nil {
			return 0, nil, fmt.Errorf("layer %d: %w", i, err)
		}
		n, skipped, err := s.addLayer(l, diffID)
		if err != nil {
			return 0, nil, fmt.Errorf("layer %s: %w", digest, err)
		}
		fmt.Fprintln(progress, stepLine(progress, "blob", digest.String(), skipped))
		if unpack {
			// Unpacked now so the first run is fast. A layer that cannot
			// stand alone (a hard link into a lower layer) fails here and
			// again at Mount, which then copies instead.
			_, _ = s.layerDir(diffID)
		}
		size += n
		diffIDs = append(diffIDs, diffID)
	}
	return size, diffIDs, nil
}

// storeConfigAndManifest stores the image's config and manifest blobs.
func (s *Store) storeConfigAndManifest(p *imageParts, progress io.Writer) error {
	if _, err := s.writeBlob(p.cfgName.String(), bytesReader(p.rawCfg)); err != nil {
		return err
	}
	fmt.Fprintln(progress, stepLine(progress, "config", p.cfgName.String(), false))
	fmt.Fprintln(progress, "Writing manifest to image destination")
	if _, err := s.writeBlob(p.manifestDigest.String(), bytesReader(p.rawManifest)); err != nil {
		return err
	}
	fmt.Fprintln(progress, "Storing signatures")
	return nil
}

// recordImage writes rec in one transaction: it keeps the names and
// added time of an existing record with the same ID, takes names away
// from any other image that had them, and adds names to rec.
func (s *Store) recordImage(rec *record, names []string) error {
	return s.update(func(tx *bolt.Tx) error {
		recs, err := allImages(tx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.ID == rec.ID {
				rec.Names = r.Names
				rec.Added = r.Added
				continue
			}
			before := len(r.Names)
			r.Names = slices.DeleteFunc(r.Names, func(n string) bool { return slices.Contains(names, n) })
			if len(r.Names) != before {
				r.RepoDigests = repoDigests(r.Names, r.Digest)
				if err := putJSON(tx, bucketImages, r.ID, r); err != nil {
					return err
				}
			}
		}
		for _, n := range names {
			if !slices.Contains(rec.Names, n) {
				rec.Names = append(rec.Names, n)
			}
		}
		rec.RepoDigests = repoDigests(rec.Names, rec.Digest)
		return putJSON(tx, bucketImages, rec.ID, rec)
	})
}

// stepLine is the permanent line of a copied blob: the full digest, or
// on a terminal the short one and "done", as Podman prints them.
func stepLine(progress io.Writer, kind, digest string, skipped bool) string {
	d, state := digest, ""
	if terminal(progress) {
		d, state = strings.TrimPrefix(digest, "sha256:"), " done"
		if len(d) > 12 {
			d = d[:12]
		}
	}
	if skipped {
		state = " skipped: already exists"
	}
	return "Copying " + kind + " " + d + state
}

func bytesReader(b []byte) io.Reader { return &byteReader{b: b} }

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// addLayer stores a layer's uncompressed tar under its diff ID.
func (s *Store) addLayer(l v1.Layer, diffID string) (size int64, skipped bool, err error) {
	p, err := s.blobPath(diffID)
	if err != nil {
		return 0, false, err
	}
	if fi, err := os.Stat(p); err == nil {
		return fi.Size(), true, nil
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, false, err
	}
	defer rc.Close()
	n, err := s.writeBlob(diffID, rc)
	return n, false, err
}

// layerDir returns the layer unpacked for overlayfs, unpacking it first
// when needed (under tmp/, renamed into place).
func (s *Store) layerDir(diffID string) (string, error) {
	bp, err := s.blobPath(diffID)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(s.dir, "layers", filepath.Base(bp))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "layer-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	f, err := os.Open(bp)
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer f.Close()
	if _, err := Unpack(f, tmp, UnpackOptions{Whiteouts: OverlayWhiteouts, Privileged: true}); err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return dst, nil // another process won the race
		}
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	return dst, nil
}
