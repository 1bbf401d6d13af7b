package image

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthnet/berth/internal/image/ref"
)

// PullOptions tune Pull.
type PullOptions struct {
	// Insecure allows plain HTTP and skips TLS verification
	// (--tls-verify=false).
	Insecure bool
	// Progress receives Podman-style progress lines (nil: none).
	Progress io.Writer
	// Platform selects from a multi-platform index (default
	// linux/<this architecture>).
	Platform *v1.Platform
	// Keychain finds credentials (default: docker and podman auth files).
	Keychain authn.Keychain
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Pull fetches an image from its registry into the store and names it
// with the normalised reference (busybox is docker.io/library/busybox:latest).
func (s *Store) Pull(ctx context.Context, reference string, o PullOptions) (*Image, error) {
	r, err := ref.Parse(reference)
	if err != nil {
		return nil, err
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	var nopts []name.Option
	if o.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	nref, err := name.ParseReference(r.String(), nopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ref.ErrInvalid, err)
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if o.Platform != nil {
		platform = *o.Platform
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	tr := o.Transport
	if tr == nil {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		if o.Insecure {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --tls-verify=false asks for it
		}
		tr = t
	}
	fmt.Fprintf(o.Progress, "Trying to pull %s...\n", r)
	img, err := remote.Image(nref, remote.WithContext(ctx), remote.WithPlatform(platform),
		remote.WithAuthFromKeychain(kc), remote.WithTransport(tr))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	out, err := s.Add(ctx, img, []string{r.String()}, o.Progress)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	return out, nil
}
