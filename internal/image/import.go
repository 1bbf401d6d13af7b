package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berthnet/berth/internal/image/change"
	"github.com/berthnet/berth/internal/image/ref"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Reference names the image; a short name goes to localhost
	// (banner is localhost/banner:latest). Empty: no name.
	Reference string
	// Changes are Dockerfile instructions (CMD ["httpd"], EXPOSE 80...).
	Changes []string
	// Message is the history comment.
	Message string
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	// Now is the creation time (zero: time.Now).
	Now time.Time
}

// importImage makes a one-layer image from a root filesystem tarball (plain,
// gzip or zstd), as podman import does.
func (s *Store) importImage(ctx context.Context, r io.Reader, o ImportOptions) (*Image, error) {
	var names []string
	if o.Reference != "" {
		rf, err := ref.ParseLocal(o.Reference)
		if err != nil {
			return nil, err
		}
		names = []string{rf.String()}
	}
	var cfg v1.Config
	if err := change.Apply(&cfg, o.Changes); err != nil {
		return nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "import-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, r); err != nil {
		return nil, fmt.Errorf("import: read tarball: %w", err)
	}
	layer, err := tarball.LayerFromFile(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	// Fail early, with a clear message, on something that is no tar.
	rc, err := layer.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if err := checkTar(rc); err != nil {
		rc.Close()
		return nil, fmt.Errorf("import: %w", err)
	}
	rc.Close()
	diffID, err := layer.DiffID()
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH, OS: "linux", Created: v1.Time{Time: now}, Config: cfg,
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: now},
			CreatedBy: fmt.Sprintf("/bin/sh -c #(nop) ADD file:%s in /", diffID.Hex),
			Comment:   o.Message,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	out, err := s.Add(ctx, img, names, o.Progress)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return out, nil
}
