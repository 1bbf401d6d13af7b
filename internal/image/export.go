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

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/image/ref"
)

// storedImage is a stored image as a go-containerregistry image: its
// config byte for byte (so the image ID stays), and its layers from the
// uncompressed blobs, gzip-compressed on the way out (Docker schema 2
// media types: go-containerregistry writes that manifest for it).
type storedImage struct {
	s      *Store
	rawCfg []byte
}

func (i *storedImage) RawConfigFile() ([]byte, error) { return i.rawCfg, nil }

func (i *storedImage) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }

func (i *storedImage) LayerByDiffID(h v1.Hash) (partial.UncompressedLayer, error) {
	p, err := i.s.blobPath(h.String())
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("layer %s: %w", h, err)
	}
	return storedLayer{path: p, diffID: h}, nil
}

type storedLayer struct {
	path   string
	diffID v1.Hash
}

func (l storedLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l storedLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l storedLayer) MediaType() (types.MediaType, error)  { return types.DockerLayer, nil }

// record returns the stored record of the image name refers to.
func (s *Store) record(name string) (record, error) {
	var rec record
	err := s.view(func(tx *bolt.Tx) error {
		recs, err := allImages(tx)
		if err != nil {
			return err
		}
		rec, err = lookup(recs, name)
		return err
	})
	return rec, err
}

// V1Image returns the image name refers to as a go-containerregistry
// image (for push, save and commit).
func (s *Store) V1Image(name string) (v1.Image, *Image, error) {
	rec, err := s.record(name)
	if err != nil {
		return nil, nil, err
	}
	raw, err := s.ReadBlob(rec.ConfigDigest)
	if err != nil {
		return nil, nil, fmt.Errorf("read config of %s: %w", rec.ID, err)
	}
	img, err := partial.UncompressedToImage(&storedImage{s: s, rawCfg: raw})
	if err != nil {
		return nil, nil, err
	}
	return img, &rec.Image, nil
}

// PushOptions tune Push.
type PushOptions struct {
	RemoteOptions
}

// Push copies the stored image source to the registry reference dest
// (empty: source's own name), as podman push does. Transient failures
// are retried.
func (s *Store) Push(ctx context.Context, source, dest string, o PushOptions) error {
	img, stored, err := s.V1Image(source)
	if err != nil {
		return err
	}
	if dest == "" {
		n, ok := namedAs(stored, source)
		if !ok {
			return fmt.Errorf("push %s: an image ID needs a destination", source)
		}
		dest = n
	}
	r, err := ref.Parse(dest)
	if err != nil {
		return err
	}
	if r.Domain == "localhost" {
		return fmt.Errorf("push %s: localhost/ names a local image; give a registry destination", dest)
	}
	o.defaults()
	nref, ropts, err := o.remote(ctx, r)
	if err != nil {
		return fmt.Errorf("push %s: %w", r, err)
	}
	fmt.Fprintln(o.Progress, "Getting image source signatures")
	err = withRetry(ctx, o.Retries, o.RetryDelay, o.Progress, func() error {
		if !terminal(o.Progress) {
			return remote.Write(nref, img, ropts...)
		}
		// go-containerregistry closes the channel when Write returns.
		updates := make(chan v1.Update, 16)
		drawn := make(chan struct{})
		go func() {
			defer close(drawn)
			for u := range updates {
				fmt.Fprintf(o.Progress, "\r%s\x1b[K", ProgressLine("blobs", "", u.Complete, u.Total))
			}
			fmt.Fprint(o.Progress, "\r\x1b[K")
		}()
		err := remote.Write(nref, img, append(ropts, remote.WithProgress(updates))...)
		<-drawn
		return err
	})
	if err != nil {
		return fmt.Errorf("push %s: %w", r, err)
	}
	// The manifest is cached: no layer is compressed again for this.
	if m, err := img.Manifest(); err == nil {
		for _, l := range m.Layers {
			fmt.Fprintln(o.Progress, stepLine(o.Progress, "blob", l.Digest.String(), false))
		}
	}
	fmt.Fprintln(o.Progress, stepLine(o.Progress, "config", "sha256:"+stored.ID, false))
	fmt.Fprintln(o.Progress, "Writing manifest to image destination")
	return nil
}

// Archive formats of Save.
const (
	FormatDockerArchive = "docker-archive"
	FormatOCIArchive    = "oci-archive"
)

// Save writes the images names refer to as one archive: a
// docker-archive (manifest.json with each image's RepoTags, several
// images allowed) or an oci-archive (an OCI layout in a tar, each
// image's name in org.opencontainers.image.ref.name), which Load reads
// back. A name that is an ID saves the image untagged.
func (s *Store) Save(w io.Writer, names []string, format string) error {
	if len(names) == 0 {
		return errors.New("save: no image given")
	}
	type entry struct {
		img  v1.Image
		name string
	}
	var es []entry
	for _, n := range names {
		img, stored, err := s.V1Image(n)
		if err != nil {
			return err
		}
		tag := ""
		if r, ok := namedAs(stored, n); ok {
			tag = r
		}
		es = append(es, entry{img, tag})
	}
	switch format {
	case "", FormatDockerArchive:
		m := map[name.Reference]v1.Image{}
		for _, e := range es {
			var nr name.Reference
			if e.name != "" {
				t, err := name.NewTag(e.name)
				if err != nil {
					return fmt.Errorf("save: %w", err)
				}
				nr = t
			} else {
				d, _ := e.img.Digest()
				dg, err := name.NewDigest("localhost/untagged@" + d.String())
				if err != nil {
					return fmt.Errorf("save: %w", err)
				}
				nr = dg
			}
			m[nr] = e.img
		}
		return tarball.MultiRefWrite(m, w)
	case FormatOCIArchive:
		dir, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "save-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		for _, e := range es {
			var opts []layout.Option
			if e.name != "" {
				opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": e.name}))
			}
			if err := p.AppendImage(e.img, opts...); err != nil {
				return fmt.Errorf("save: %w", err)
			}
		}
		return tarDir(w, dir)
	}
	return fmt.Errorf("save: format %q is not supported, valid: %s, %s", format, FormatDockerArchive, FormatOCIArchive)
}

// namedAs is the full name the user's name n gave for img ("" and false
// when n is an ID or matched no name).
func namedAs(img *Image, n string) (string, bool) {
	for _, c := range ref.Candidates(n) {
		for _, have := range img.Names {
			if have == c.String() && c.Tag != "" {
				return have, true
			}
		}
	}
	if idPrefix.MatchString(n) {
		return "", false
	}
	if len(img.Names) > 0 {
		return img.Names[0], true
	}
	return "", false
}

// tarDir writes the regular files and directories under dir as a tar.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return tw.Close()
}

// LayerSizes returns the uncompressed size of each layer of the image
// name refers to, bottom first (what docker history shows per step).
func (s *Store) LayerSizes(name string) ([]int64, error) {
	img, err := s.Lookup(name)
	if err != nil {
		return nil, err
	}
	sizes := make([]int64, 0, len(img.Layers))
	for _, l := range img.Layers {
		p, err := s.blobPath(l)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("layer %s of %s: %w", l, img.ID, err)
		}
		sizes = append(sizes, fi.Size())
	}
	return sizes, nil
}
