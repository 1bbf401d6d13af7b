package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/berthnet/berth/internal/build"
	"github.com/berthnet/berth/internal/dockerapi"
)

// Build runs an image build for POST /build: RUN containers on the
// network networkMode names, missing base images pulled.
func (b dockerBackend) Build(ctx context.Context, o build.Options, networkMode string) (*build.Result, error) {
	e, err := b.w.engine()
	if err != nil {
		return nil, err
	}
	st, err := b.images()
	if err != nil {
		return nil, err
	}
	if o.Network, err = buildNetwork(networkMode); err != nil {
		return nil, fmt.Errorf("networkmode: %w: %w", err, dockerapi.ErrInvalid)
	}
	o.Pull = func(ctx context.Context, name string) error {
		_, err := b.PullImage(ctx, name, nil, io.Discard)
		return err
	}
	return imageBuilder(e, st, b.w.root).Build(ctx, o)
}
