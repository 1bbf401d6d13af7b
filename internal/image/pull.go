package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthnet/berth/internal/image/ref"
)

// RemoteOptions are how pull and push reach a registry.
type RemoteOptions struct {
	// TLSVerify is --tls-verify: nil lets registries.conf decide (a
	// registry marked insecure may use plain HTTP and unverified TLS);
	// false allows both for any registry; true requires verified HTTPS.
	TLSVerify *bool
	// CertDir replaces <certs.d>/<host>/ as the directory of *.crt
	// (CAs) and *.cert/*.key (client certificate) files (--cert-dir).
	CertDir string
	// Registries is the registries.conf and certs.d configuration.
	Registries RegistryConfig
	// Progress receives Podman-style progress lines (nil: none); a
	// TerminalProgress also gets per-blob byte counts.
	Progress io.Writer
	// Keychain finds credentials (default: docker and podman auth files).
	Keychain authn.Keychain
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Retries is how often a transient failure is retried (0:
	// DefaultRetries, negative: never); RetryDelay the first pause (0:
	// DefaultRetryDelay), doubled for each retry.
	Retries    int
	RetryDelay time.Duration
}

// PullOptions tune Pull.
type PullOptions struct {
	RemoteOptions
	// Platform selects from a multi-platform index (default
	// linux/<this architecture>).
	Platform *v1.Platform
}

func (o *RemoteOptions) defaults() {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
}

// insecure reports whether r's registry may use plain HTTP and
// unverified TLS.
func (o *RemoteOptions) insecure(r ref.Reference) bool {
	if o.TLSVerify != nil {
		return !*o.TLSVerify
	}
	return o.Registries.IsInsecure(r.Repository())
}

// remote resolves r for go-containerregistry and builds its options.
func (o *RemoteOptions) remote(ctx context.Context, r ref.Reference) (name.Reference, []remote.Option, error) {
	if o.Registries.IsBlocked(r.Repository()) {
		return nil, nil, fmt.Errorf("registry %s is blocked in registries.conf", r.Domain)
	}
	insecure := o.insecure(r)
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	nref, err := name.ParseReference(r.String(), nopts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ref.ErrInvalid, err)
	}
	tr := o.Transport
	if tr == nil {
		t, err := o.Registries.Transport(r.Domain, o.CertDir, insecure)
		if err != nil {
			return nil, nil, err
		}
		tr = t
	}
	if !insecure {
		tr = httpsOnly{tr}
	}
	if terminal(o.Progress) {
		tr = &meterTransport{base: tr, w: o.Progress}
	}
	ropts := []remote.Option{
		remote.WithContext(ctx), remote.WithAuthFromKeychain(o.Keychain), remote.WithTransport(tr),
		// berth retries whole operations itself (withRetry).
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
	return nref, ropts, nil
}

// pull fetches an image from its registry into the store and names it
// with the normalised reference (busybox is docker.io/library/busybox:latest).
// Transient failures (see Retryable) are retried from the start.
func (s *Store) pull(ctx context.Context, reference string, o PullOptions) (*Image, error) {
	r, err := ref.Parse(reference)
	if err != nil {
		return nil, err
	}
	o.defaults()
	nref, ropts, err := o.remote(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if o.Platform != nil {
		platform = *o.Platform
	}
	ropts = append(ropts, remote.WithPlatform(platform))
	fmt.Fprintf(o.Progress, "Trying to pull %s...\n", r)
	var out *Image
	err = withRetry(ctx, o.Retries, o.RetryDelay, o.Progress, func() error {
		img, err := remote.Image(nref, ropts...)
		if err != nil {
			return err
		}
		out, err = s.Add(ctx, img, []string{r.String()}, o.Progress)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r, err)
	}
	return out, nil
}

// RemoteDiffers reports whether the registry's manifest for reference
// differs from the stored image's (pull policy "newer"). When the
// registry cannot be asked, the stored image is used (false), as Podman
// does.
func (s *Store) RemoteDiffers(ctx context.Context, local *Image, reference string, o RemoteOptions) bool {
	r, err := ref.Parse(reference)
	if err != nil {
		return false
	}
	o.defaults()
	o.Progress = io.Discard
	nref, ropts, err := o.remote(ctx, r)
	if err != nil {
		return false
	}
	d, err := remote.Head(nref, ropts...)
	if err != nil {
		return false
	}
	if !d.MediaType.IsIndex() {
		return d.Digest.String() != local.Digest
	}
	// An index: compare this platform's manifest, which is what Pull stored.
	idx, err := remote.Index(nref, ropts...)
	if err != nil {
		return false
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return false
	}
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
			return m.Digest.String() != local.Digest
		}
	}
	return true
}

// httpsOnly refuses plain HTTP: go-containerregistry falls back to it
// for loopback and private addresses, Podman only for insecure
// registries.
type httpsOnly struct{ base http.RoundTripper }

// ErrPlainHTTP: plain HTTP to a registry not marked insecure.
var ErrPlainHTTP = errors.New("plain HTTP needs an insecure registry (registries.conf insecure = true, or --tls-verify=false)")

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" {
		return nil, fmt.Errorf("%s: %w", req.URL.Host, ErrPlainHTTP)
	}
	return h.base.RoundTrip(req)
}
