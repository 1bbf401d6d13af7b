package image_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthnet/berth/internal/image"
)

func TestAuthFileKeychain(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	p := filepath.Join(t.TempDir(), "auth.json")
	err := os.WriteFile(p, []byte(`{"auths": {
		"https://index.docker.io/v1/": {"auth": "`+b64("hub:h")+`"},
		"reg.test:5000": {"auth": "`+b64("reg:r")+`"},
		"reg.test:5000/team": {"username": "team", "password": "t"}
	}}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	kc := image.AuthFileKeychain(p)
	for ref, want := range map[string]string{
		"busybox": "hub", "reg.test:5000/other/x": "reg", "reg.test:5000/team/app": "team",
		"reg.test:5000/teamx/app": "reg", "quay.io/a/b": "",
	} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(r.Context())
		if err != nil {
			t.Fatal(err)
		}
		c, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if c.Username != want {
			t.Errorf("%s: user %q, want %q", ref, c.Username, want)
		}
	}
	if _, err := image.ParseAuthFile([]byte(`{"auths":{"x":{"auth":"!!"}}}`)); err == nil {
		t.Error("bad base64 parsed")
	}
	if _, err := image.ParseAuthFile([]byte(`{"auths":{"x":{"auth":"` + b64("nocolon") + `"}}}`)); err == nil {
		t.Error("auth without a colon parsed")
	}
	if c, err := image.ParseCreds("u:p:q"); err != nil || c.Username != "u" || c.Password != "p:q" {
		t.Errorf("ParseCreds: %+v %v", c, err)
	}
	if _, err := image.ParseCreds("nopass"); err == nil {
		t.Error("creds without a password parsed")
	}
}

func FuzzParseAuthFile(f *testing.F) {
	f.Add([]byte(`{"auths":{"a":{"auth":"dTpw"}}}`))
	f.Add([]byte(`{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		auths, err := image.ParseAuthFile(data)
		if err != nil {
			return
		}
		var raw struct{ Auths map[string]json.RawMessage }
		if json.Unmarshal(data, &raw) == nil && len(auths) > len(raw.Auths) {
			t.Fatalf("%d credentials from %d keys", len(auths), len(raw.Auths))
		}
	})
}

func TestPullWithCredentials(t *testing.T) {
	reg := basicAuth(registry.New(registry.Logger(log.New(io.Discard, "", 0))), "ann", "secret")
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	r, _ := name.ParseReference(host+"/app:1", name.Insecure)
	if err := remote.Write(r, twoLayerImage(t), remote.WithAuth(&authn.Basic{Username: "ann", Password: "secret"})); err != nil {
		t.Fatal(err)
	}
	s := copyStore(t)
	var progress bytes.Buffer
	o := image.RemoteOptions{TLSVerify: &noVerify, Progress: &progress, RetryDelay: time.Millisecond}
	if _, err := s.Pull(context.Background(), host+"/app:1", image.PullOptions{RemoteOptions: o}); err == nil || strings.Contains(progress.String(), "retrying") {
		t.Errorf("anonymous pull: %v\n%s", err, progress.String())
	}
	o.Keychain = image.StaticKeychain(authn.AuthConfig{Username: "ann", Password: "secret"})
	if _, err := s.Pull(context.Background(), host+"/app:1", image.PullOptions{RemoteOptions: o}); err != nil {
		t.Errorf("pull with --creds: %v", err)
	}
	p := filepath.Join(t.TempDir(), "auth.json")
	auth := base64.StdEncoding.EncodeToString([]byte("ann:secret"))
	if err := os.WriteFile(p, []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Keychain = image.AuthFileKeychain(p)
	if err := s.Push(context.Background(), host+"/app:1", host+"/copy:1", image.PushOptions{RemoteOptions: o}); err != nil {
		t.Errorf("push with --authfile: %v", err)
	}
}

// basicAuth requires user:password on every request.
func basicAuth(h http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
