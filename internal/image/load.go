package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berthnet/berth/internal/image/ref"
)

// Loaded is one image Load stored, with the names it got.
type Loaded struct {
	Image *Image
	Names []string
}

// load stores the images of an archive, as podman load does: a
// docker-archive tar (docker save, podman save), an OCI layout directory,
// or an OCI archive (an OCI layout in a tar); tars may be gzip-compressed.
func (s *Store) load(ctx context.Context, path string, progress io.Writer) ([]Loaded, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if fi.IsDir() {
		return s.loadLayout(ctx, path, progress)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer f.Close()
	return s.loadReader(ctx, f, progress)
}

// loadReader is load for an archive read from r (stdin).
func (s *Store) loadReader(ctx context.Context, r io.Reader, progress io.Writer) ([]Loaded, error) {
	// The archive is read more than once: keep an uncompressed copy.
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "load-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		src = gz
	}
	if _, err := io.Copy(tmp, src); err != nil {
		return nil, fmt.Errorf("load: read archive: %w", err)
	}
	kind, err := archiveKind(tmp.Name())
	if err != nil {
		return nil, err
	}
	switch kind {
	case "docker":
		return s.loadDocker(ctx, tmp.Name(), progress)
	case "oci":
		dir, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "oci-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if _, err := Unpack(tmp, dir, UnpackOptions{}); err != nil {
			return nil, fmt.Errorf("load: unpack OCI archive: %w", err)
		}
		return s.loadLayout(ctx, dir, progress)
	}
	return nil, errors.New("load: the archive is neither a docker-archive (manifest.json) nor an OCI archive (index.json)")
}

// archiveKind looks for docker's manifest.json or OCI's index.json.
func archiveKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	kind := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return kind, nil
		}
		if err != nil {
			return "", fmt.Errorf("load: not a tar archive: %w", err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			return "docker", nil
		case "index.json", "oci-layout":
			kind = "oci"
		}
	}
}

func (s *Store) loadDocker(ctx context.Context, path string, progress io.Writer) ([]Loaded, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("load docker-archive: %w", err)
	}
	var out []Loaded
	for i, d := range m {
		var tag *name.Tag
		var names []string
		for _, t := range d.RepoTags {
			r, err := ref.Parse(t)
			if err != nil {
				return nil, fmt.Errorf("load docker-archive: image %d: RepoTags %q: %w", i, t, err)
			}
			names = append(names, r.String())
		}
		if len(d.RepoTags) > 0 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("load docker-archive: image %d: %w", i, err)
			}
			tag = &t
		} else if len(m) > 1 {
			return nil, fmt.Errorf("load docker-archive: image %d (config %s) has no RepoTags; berth loads untagged images only from single-image archives", i, d.Config)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("load docker-archive: %w", err)
		}
		stored, err := s.Add(ctx, img, names, progress)
		if err != nil {
			return nil, fmt.Errorf("load docker-archive: %w", err)
		}
		out = append(out, Loaded{Image: stored, Names: names})
	}
	return out, nil
}

func (s *Store) loadLayout(ctx context.Context, dir string, progress io.Writer) ([]Loaded, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("load OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("load OCI layout: %w", err)
	}
	var out []Loaded
	for _, d := range im.Manifests {
		var img v1.Image
		switch {
		case d.MediaType.IsImage():
			img, err = idx.Image(d.Digest)
		case d.MediaType.IsIndex():
			img, err = platformImage(idx, d.Digest)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load OCI layout: %s: %w", d.Digest, err)
		}
		var names []string
		for _, key := range []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"} {
			n := d.Annotations[key]
			if n == "" || (!strings.ContainsAny(n, "/:@") && key != "io.containerd.image.name") {
				continue // a bare tag names no repository
			}
			r, err := ref.Parse(n)
			if err != nil {
				return nil, fmt.Errorf("load OCI layout: annotation %s=%q: %w", key, n, err)
			}
			names = append(names, r.String())
			break
		}
		stored, err := s.Add(ctx, img, names, progress)
		if err != nil {
			return nil, fmt.Errorf("load OCI layout: %w", err)
		}
		out = append(out, Loaded{Image: stored, Names: names})
	}
	if len(out) == 0 {
		return nil, errors.New("load OCI layout: index.json lists no image")
	}
	return out, nil
}

// platformImage picks this machine's image from a nested index.
func platformImage(parent v1.ImageIndex, h v1.Hash) (v1.Image, error) {
	idx, err := parent.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() && (d.Platform == nil || (d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH)) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for linux/%s in index %s", runtime.GOARCH, h)
}
