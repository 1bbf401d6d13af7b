package cli

// Registry flags shared by pull, push, run and create, and the pull
// policy of run and create.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/ref"
)

// registryFlags are --tls-verify and --cert-dir, and on pull and push
// --creds and --authfile.
type registryFlags struct {
	tlsVerify       bool
	certDir         string
	creds, authfile string
}

// registerAuth registers --creds and --authfile (pull and push).
func (r *registryFlags) registerAuth(fl *pflag.FlagSet) {
	fl.StringVar(&r.creds, "creds", "", "credentials USERNAME:PASSWORD for the registry")
	fl.StringVar(&r.authfile, "authfile", "", "auth file of credentials (default: Docker's and Podman's; $REGISTRY_AUTH_FILE)")
}

func (r *registryFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&r.tlsVerify, "tls-verify", true, "require HTTPS and verify certificates (false: plain HTTP and unverified TLS allowed; unset: registries.conf decides)")
	fl.StringVar(&r.certDir, "cert-dir", "", "directory of *.crt CA files and a *.cert/*.key client pair (default <certs.d>/HOST:PORT)")
}

// remoteOptions builds the registry options: --tls-verify only when
// given, registries.conf and certs.d, and the progress writer (nil when
// quiet; a terminal gets byte counts).
func (r *registryFlags) remoteOptions(cmd *cobra.Command, env Env, quiet bool) (image.RemoteOptions, error) {
	var o image.RemoteOptions
	if f := cmd.Flags().Lookup("tls-verify"); f != nil && f.Changed {
		v := r.tlsVerify
		o.TLSVerify = &v
	}
	o.CertDir = r.certDir
	rc, err := image.LoadRegistryConfig(registriesGetenv(env))
	if err != nil {
		return o, err
	}
	o.Registries = rc
	switch {
	case r.creds != "":
		c, err := image.ParseCreds(r.creds)
		if err != nil {
			return o, err
		}
		o.Keychain = image.StaticKeychain(c)
	case r.authfile != "":
		if _, err := os.Stat(r.authfile); err != nil {
			return o, fmt.Errorf("--authfile: %w", err)
		}
		o.Keychain = image.AuthFileKeychain(r.authfile)
	}
	if !quiet {
		o.Progress = progressWriter(env.Stderr)
	}
	return o, nil
}

// registriesGetenv is env.getenv, with a rootless user's
// ~/.config/containers/registries.conf (when it exists) as the default
// registries.conf.
func registriesGetenv(env Env) func(string) string {
	return func(k string) string {
		v := env.getenv(k)
		if k == image.EnvRegistriesConf && v == "" && env.Rootless && env.Home != "" {
			p := filepath.Join(env.Home, ".config", "containers", "registries.conf")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		return v
	}
}

// progressWriter marks w as a terminal when it is one.
func progressWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return image.TerminalProgress{Writer: w}
	}
	return w
}

// Pull policies of run and create (--pull).
const (
	pullMissing = "missing"
	pullAlways  = "always"
	pullNever   = "never"
	pullNewer   = "newer"
)

// parsePullPolicy checks a --pull value; Podman also takes true (always)
// and false (never).
func parsePullPolicy(s string) (string, error) {
	switch s {
	case pullMissing, pullAlways, pullNever, pullNewer:
		return s, nil
	case "true":
		return pullAlways, nil
	case "false":
		return pullNever, nil
	}
	return "", fmt.Errorf("unsupported pull policy %q", s)
}

// pullFlags are the image flags of run and create: --pull, -q and the
// registry flags.
type pullFlags struct {
	policy string
	quiet  bool
	reg    registryFlags
}

func (p *pullFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&p.policy, "pull", pullMissing, "pull the image: missing (when not stored), always, never, newer (when the registry's differs)")
	fl.BoolVarP(&p.quiet, "quiet", "q", false, "suppress the output of pulling the image")
	p.reg.register(fl)
}

// ensure makes the image of run or create present according to --pull:
// it pulls when the policy asks for it and fails as Podman does
// ("IMAGE: image not known", exit 125) when --pull=never finds none.
func (p *pullFlags) ensure(cmd *cobra.Command, env Env, g *globals, imageName string) error {
	if imageName == "" {
		return nil
	}
	policy, err := parsePullPolicy(p.policy)
	if err != nil {
		return err
	}
	s, err := openImages(env, g)
	if err != nil {
		return err
	}
	local, err := s.Lookup(imageName)
	if err != nil && !errors.Is(err, image.ErrNotFound) {
		return err
	}
	found := err == nil
	ro, err := p.reg.remoteOptions(cmd, env, p.quiet)
	if err != nil {
		return err
	}
	switch policy {
	case pullNever:
		if !found {
			return &exitError{code: 125, err: fmt.Errorf("%s: %w", imageName, image.ErrNotFound)}
		}
		return nil
	case pullMissing:
		if found {
			return nil
		}
	case pullNewer:
		if found && !s.RemoteDiffers(cmd.Context(), local, imageName, ro) {
			return nil
		}
	}
	if found && !pullable(local, imageName) {
		return nil // an ID or a local-only name: nothing to pull
	}
	_, err = s.Pull(cmd.Context(), imageName, image.PullOptions{RemoteOptions: ro})
	return err
}

// pullable reports whether the user's name of a stored image can be
// pulled: not an image ID, not a localhost/ name.
func pullable(img *image.Image, name string) bool {
	if len(name) >= 3 && strings.HasPrefix(img.ID, strings.TrimPrefix(name, "sha256:")) {
		return false
	}
	for _, c := range ref.Candidates(name) {
		if c.Domain == "localhost" && slices.Contains(img.Names, c.String()) {
			return false
		}
	}
	return true
}
