package image

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Registry configuration files, as Podman reads them.
const (
	// DefaultRegistriesConf is the system registries.conf.
	DefaultRegistriesConf = "/etc/containers/registries.conf"
	// DefaultCertsDir holds a directory per registry (host[:port]) with
	// ca.crt and client certificates.
	DefaultCertsDir = "/etc/containers/certs.d"
	// EnvRegistriesConf overrides the registries.conf path (Podman's).
	EnvRegistriesConf = "CONTAINERS_REGISTRIES_CONF"
	// EnvCertsDirs overrides the certs.d directories (colon-separated).
	EnvCertsDirs = "BERTH_CERTS_D"
)

// RegistryConfig is what berth takes from registries.conf and certs.d:
// which registries speak plain HTTP and where their certificates are.
type RegistryConfig struct {
	// Insecure lists registry locations (host[:port], optionally with a
	// path prefix) that may use plain HTTP or unverified TLS.
	Insecure []string
	// Blocked lists registry locations that must not be used.
	Blocked []string
	// CertsDirs are searched for <host[:port]>/ca.crt, *.cert and *.key.
	CertsDirs []string
}

// registriesConf is the part of registries.conf (v2 and v1 formats)
// berth understands; other keys are ignored.
type registriesConf struct {
	Registry []struct {
		Location string `toml:"location"`
		Prefix   string `toml:"prefix"`
		Insecure bool   `toml:"insecure"`
		Blocked  bool   `toml:"blocked"`
	} `toml:"registry"`
	Registries struct {
		Insecure struct {
			Registries []string `toml:"registries"`
		} `toml:"insecure"`
		Block struct {
			Registries []string `toml:"registries"`
		} `toml:"block"`
	} `toml:"registries"`
}

// ParseRegistriesConf parses registries.conf content.
func ParseRegistriesConf(data []byte) (RegistryConfig, error) {
	var rc registriesConf
	if _, err := toml.Decode(string(data), &rc); err != nil {
		return RegistryConfig{}, fmt.Errorf("parse registries.conf: %w", err)
	}
	var c RegistryConfig
	for _, r := range rc.Registry {
		loc := r.Location
		if r.Prefix != "" {
			loc = r.Prefix
		}
		loc = strings.TrimSuffix(loc, "/")
		if loc == "" {
			continue
		}
		if r.Insecure {
			c.Insecure = append(c.Insecure, loc)
		}
		if r.Blocked {
			c.Blocked = append(c.Blocked, loc)
		}
	}
	c.Insecure = append(c.Insecure, rc.Registries.Insecure.Registries...)
	c.Blocked = append(c.Blocked, rc.Registries.Block.Registries...)
	return c, nil
}

// LoadRegistryConfig reads registries.conf ($CONTAINERS_REGISTRIES_CONF,
// else /etc/containers/registries.conf; a missing file is no error) and
// sets the certs.d directories ($BERTH_CERTS_D, else
// /etc/containers/certs.d and /etc/docker/certs.d).
func LoadRegistryConfig(getenv func(string) string) (RegistryConfig, error) {
	path := getenv(EnvRegistriesConf)
	if path == "" {
		path = DefaultRegistriesConf
	}
	var c RegistryConfig
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return c, fmt.Errorf("read registries.conf: %w", err)
	default:
		if c, err = ParseRegistriesConf(data); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	if d := getenv(EnvCertsDirs); d != "" {
		c.CertsDirs = filepath.SplitList(d)
	} else {
		c.CertsDirs = []string{DefaultCertsDir, "/etc/docker/certs.d"}
	}
	return c, nil
}

// matches reports whether the repository (host[:port]/path) is under
// location: the same host and a path prefix at a component boundary.
func matches(location, repository string) bool {
	return repository == location || strings.HasPrefix(repository, location+"/")
}

// IsInsecure reports whether registries.conf marks the repository's
// registry insecure.
func (c RegistryConfig) IsInsecure(repository string) bool {
	for _, l := range c.Insecure {
		if matches(l, repository) {
			return true
		}
	}
	return false
}

// IsBlocked reports whether registries.conf blocks the repository.
func (c RegistryConfig) IsBlocked(repository string) bool {
	for _, l := range c.Blocked {
		if matches(l, repository) {
			return true
		}
	}
	return false
}

// TLSConfig builds the TLS configuration for host (host[:port]): the
// system roots plus every *.crt of certDir (when given) or of
// <certs.d>/<host>/, and a client certificate from a *.cert/*.key pair.
// insecure skips verification.
func (c RegistryConfig) TLSConfig(host, certDir string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		cfg.InsecureSkipVerify = true //nolint:gosec // --tls-verify=false or an insecure registry asks for it
		return cfg, nil
	}
	dirs := []string{certDir}
	if certDir == "" {
		dirs = nil
		for _, d := range c.CertsDirs {
			dirs = append(dirs, filepath.Join(d, host))
		}
	}
	for _, d := range dirs {
		if err := addCerts(cfg, d); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// addCerts adds the certificates of dir (missing: nothing) to cfg.
func addCerts(cfg *tls.Config, dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read certificates: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch filepath.Ext(e.Name()) {
		case ".crt":
			if cfg.RootCAs == nil {
				if cfg.RootCAs, err = x509.SystemCertPool(); err != nil {
					cfg.RootCAs = x509.NewCertPool()
				}
			}
			pem, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("read certificates: %w", err)
			}
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("read certificates: %s holds no PEM certificate", p)
			}
		case ".cert":
			key := strings.TrimSuffix(p, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(p, key)
			if err != nil {
				return fmt.Errorf("read client certificate %s: %w", p, err)
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		}
	}
	return nil
}

// Transport is the HTTP transport for a registry host.
func (c RegistryConfig) Transport(host, certDir string, insecure bool) (*http.Transport, error) {
	tc, err := c.TLSConfig(host, certDir, insecure)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return t, nil
}
