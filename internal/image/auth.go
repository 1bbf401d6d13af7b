package image

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// ParseAuthFile parses a containers auth.json (or Docker config.json):
// credentials by registry or repository key ("quay.io",
// "https://index.docker.io/v1/", "registry:5000/team"), each as "auth"
// (base64 of user:password) or "username" and "password". Keys are
// returned without scheme and trailing path "/v1/" or "/v2/".
func ParseAuthFile(data []byte) (map[string]authn.AuthConfig, error) {
	var f struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse auth file: %w", err)
	}
	out := map[string]authn.AuthConfig{}
	for k, v := range f.Auths {
		c := authn.AuthConfig{Username: v.Username, Password: v.Password}
		if v.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(v.Auth)
			if err != nil {
				return nil, fmt.Errorf("parse auth file: %s: %w", k, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("parse auth file: %s: auth is not user:password", k)
			}
			c.Username, c.Password = user, pass
		}
		out[authKey(k)] = c
	}
	return out, nil
}

// authKey normalises an auth file key: no scheme, no /v1/ or /v2/,
// Docker Hub's index as docker.io.
func authKey(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	k = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(k, "/"), "/v1"), "/v2")
	for _, hub := range []string{"index.docker.io", "registry-1.docker.io"} {
		if k == hub || strings.HasPrefix(k, hub+"/") {
			k = "docker.io" + k[len(hub):]
		}
	}
	return k
}

// ParseCreds parses --creds USER:PASSWORD.
func ParseCreds(s string) (authn.AuthConfig, error) {
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" {
		return authn.AuthConfig{}, errors.New("--creds: want USERNAME:PASSWORD")
	}
	return authn.AuthConfig{Username: user, Password: pass}, nil
}

// StaticKeychain gives the same credentials for every registry (--creds).
func StaticKeychain(c authn.AuthConfig) authn.Keychain { return staticKeychain{c} }

type staticKeychain struct{ c authn.AuthConfig }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(k.c), nil
}

// AuthFileKeychain reads credentials from an auth file (--authfile):
// the repository's key first, then its parents, then the registry's.
func AuthFileKeychain(path string) authn.Keychain { return authFileKeychain{path} }

type authFileKeychain struct{ path string }

func (k authFileKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	data, err := os.ReadFile(k.path)
	if err != nil {
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	auths, err := ParseAuthFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.path, err)
	}
	reg := authKey(r.RegistryStr())
	for key := authKey(r.String()); ; {
		if c, ok := auths[key]; ok {
			return authn.FromConfig(c), nil
		}
		i := strings.LastIndexByte(key, '/')
		if i < 0 || key == reg {
			break
		}
		key = key[:i]
	}
	if c, ok := auths[reg]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}
