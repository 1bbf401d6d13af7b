package image_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

func TestParseRegistriesConf(t *testing.T) {
	c, err := image.ParseRegistriesConf([]byte(`
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "127.0.0.1:5000"
insecure = true
[[registry]]
location = "quay.io/blocked"
blocked = true
[[registry]]
prefix = "example.com/team"
location = "mirror.example.com/team"
insecure = true
[registries.insecure]
registries = ["legacy.local:5000"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]bool{
		"127.0.0.1:5000/app": true, "127.0.0.1:50000/app": false, "example.com/team/x": true,
		"example.com/teamx/y": false, "legacy.local:5000/z": true, "docker.io/library/busybox": false,
	} {
		if got := c.IsInsecure(repo); got != want {
			t.Errorf("IsInsecure(%s) = %v, want %v", repo, got, want)
		}
	}
	if !c.IsBlocked("quay.io/blocked/app") || c.IsBlocked("quay.io/other") {
		t.Error("IsBlocked")
	}
	if _, err := image.ParseRegistriesConf([]byte("[[registry]\nlocation=")); err == nil {
		t.Error("bad TOML parsed")
	}
}

func TestLoadRegistryConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, []byte("[[registry]]\nlocation=\"r.test:1\"\ninsecure=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{image.EnvRegistriesConf: conf, image.EnvCertsDirs: "/a:/b"}
	c, err := image.LoadRegistryConfig(func(k string) string { return env[k] })
	if err != nil || !c.IsInsecure("r.test:1/x") || len(c.CertsDirs) != 2 || c.CertsDirs[1] != "/b" {
		t.Errorf("%+v %v", c, err)
	}
	env[image.EnvRegistriesConf] = filepath.Join(dir, "missing")
	if c, err := image.LoadRegistryConfig(func(k string) string { return env[k] }); err != nil || len(c.Insecure) != 0 {
		t.Errorf("missing file: %+v %v", c, err)
	}
}

func FuzzParseRegistriesConf(f *testing.F) {
	f.Add([]byte("[[registry]]\nlocation=\"a:1\"\ninsecure=true\n"))
	f.Add([]byte("[registries.insecure]\nregistries=[\"x\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := image.ParseRegistriesConf(data)
		if err != nil {
			return
		}
		for _, l := range c.Insecure {
			if !c.IsInsecure(l) {
				t.Errorf("location %q is not insecure for itself", l)
			}
		}
	})
}

func TestRetryable(t *testing.T) {
	opErr := func(e error) error {
		return &url.Error{Op: "Get", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", e)}}
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{opErr(syscall.ECONNREFUSED), true},
		{opErr(syscall.ECONNRESET), true},
		{fmt.Errorf("layer: %w", io.ErrUnexpectedEOF), true},
		{&transport.Error{StatusCode: 503}, true},
		{&transport.Error{StatusCode: 500}, true},
		{&transport.Error{StatusCode: 429}, true},
		{&transport.Error{StatusCode: 401}, false},
		{&transport.Error{StatusCode: 404}, false},
		{fmt.Errorf("pull: %w", &transport.Error{StatusCode: 403}), false},
		{&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, false},
		{&net.DNSError{Err: "timeout", Name: "x", IsTimeout: true}, true},
		{context.Canceled, false},
		{errors.New("write blob: no space left"), false},
		{nil, false},
	} {
		if got := image.Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if image.Backoff(time.Second, 1) != time.Second || image.Backoff(time.Second, 3) != 4*time.Second {
		t.Error("Backoff does not double")
	}
}

func TestProgressFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0.0b", 512: "512.0b", 1536: "1.5KiB", 1258291: "1.2MiB", 3 << 30: "3.0GiB"} {
		if got := image.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		done, total int64
		want        string
	}{
		{0, 100, "Copying blob abababababab [>-------------------] 0.0b / 100.0b"},
		{50, 100, "Copying blob abababababab [==========>---------] 50.0b / 100.0b"},
		{100, 100, "Copying blob abababababab [====================] 100.0b / 100.0b"},
		{2048, -1, "Copying blob abababababab 2.0KiB"},
	} {
		if got := image.ProgressLine("blob", d, c.done, c.total); got != c.want {
			t.Errorf("ProgressLine(%d, %d) = %q, want %q", c.done, c.total, got, c.want)
		}
	}
}

// flaky fails the first n blob requests: with 503, or by closing the
// connection half way through the body.
type flaky struct {
	h     http.Handler
	n     atomic.Int32
	cut   bool
	calls atomic.Int32
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, "/blobs/sha256:") || r.Method != http.MethodGet || f.n.Add(-1) < 0 {
		f.h.ServeHTTP(w, r)
		return
	}
	f.calls.Add(1)
	if !f.cut {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:len(body)/2])
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestPullRetriesTransientFailures(t *testing.T) {
	for _, cut := range []bool{false, true} {
		t.Run(fmt.Sprintf("cut=%v", cut), func(t *testing.T) {
			f := &flaky{h: registry.New(registry.Logger(log.New(io.Discard, "", 0))), cut: cut}
			f.n.Store(2)
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "http://")
			push(t, host, "app:1", twoLayerImage(t))
			s := copyStore(t)
			var progress bytes.Buffer
			_, err := s.Pull(context.Background(), host+"/app:1", image.PullOptions{RemoteOptions: image.RemoteOptions{
				TLSVerify: &noVerify, Progress: &progress, RetryDelay: time.Millisecond}})
			if err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			if f.calls.Load() != 2 || strings.Count(progress.String(), "Failed, retrying in") != 2 {
				t.Errorf("%d failed requests; progress:\n%s", f.calls.Load(), progress.String())
			}
		})
	}
}

func TestPullGivesUpAfterRetriesAndNeverRetriesNotFound(t *testing.T) {
	f := &flaky{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	f.n.Store(100)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push(t, host, "app:1", twoLayerImage(t))
	s := copyStore(t)
	o := image.PullOptions{RemoteOptions: image.RemoteOptions{TLSVerify: &noVerify, RetryDelay: time.Millisecond}}
	if _, err := s.Pull(context.Background(), host+"/app:1", o); err == nil {
		t.Fatal("pull succeeded")
	}
	if got := f.calls.Load(); got != 1+image.DefaultRetries {
		t.Errorf("%d attempts, want %d", got, 1+image.DefaultRetries)
	}
	var progress bytes.Buffer
	o.Progress = &progress
	if _, err := s.Pull(context.Background(), host+"/nothing:1", o); err == nil || strings.Contains(progress.String(), "retrying") {
		t.Errorf("not found: %v\n%s", err, progress.String())
	}
}

func TestPullProgressOnATerminal(t *testing.T) {
	host := serveRegistry(t)
	push(t, host, "app:1", twoLayerImage(t))
	s := copyStore(t)
	var out bytes.Buffer
	_, err := s.Pull(context.Background(), host+"/app:1", image.PullOptions{RemoteOptions: image.RemoteOptions{
		TLSVerify: &noVerify, Progress: image.TerminalProgress{Writer: &out}}})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"\rCopying blob ", "b / ", "] ", "\r\x1b[K", " done\n", "Writing manifest"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal progress lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, "Copying blob sha256:") {
		t.Errorf("terminal progress has full digests:\n%q", got)
	}
}

func TestPullOverTLSWithACAFromCertsD(t *testing.T) {
	caPEM, certPEM, keyPEM := imagetest.TestCA(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	certsD := t.TempDir()
	rc := image.RegistryConfig{CertsDirs: []string{certsD}}
	src := twoLayerImage(t)
	s := copyStore(t)
	if _, err := s.Add(context.Background(), src, []string{"localhost/app:1"}, nil); err != nil {
		t.Fatal(err)
	}
	// Without the CA, verification fails.
	o := image.PullOptions{RemoteOptions: image.RemoteOptions{Registries: rc, Retries: -1}}
	if err := s.Push(context.Background(), "app:1", host+"/app:1", image.PushOptions{RemoteOptions: o.RemoteOptions}); err == nil {
		t.Fatal("push without the CA succeeded")
	}
	if err := os.MkdirAll(filepath.Join(certsD, host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certsD, host, "ca.crt"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Push(context.Background(), "app:1", host+"/app:1", image.PushOptions{RemoteOptions: o.RemoteOptions}); err != nil {
		t.Fatal(err)
	}
	img, err := copyStore(t).Pull(context.Background(), host+"/app:1", o)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.ConfigName()
	if img.ID != want.Hex {
		t.Errorf("pulled %s, want %s", img.ID, want.Hex)
	}
}

func TestPlainHTTPNeedsAnInsecureRegistry(t *testing.T) {
	host := serveRegistry(t)
	push(t, host, "app:1", twoLayerImage(t))
	s := copyStore(t)
	o := image.PullOptions{RemoteOptions: image.RemoteOptions{Retries: -1}}
	if _, err := s.Pull(context.Background(), host+"/app:1", o); !errors.Is(err, image.ErrPlainHTTP) {
		t.Errorf("pull over plain HTTP from a registry not marked insecure: %v", err)
	}
	yes := true
	o.TLSVerify = &yes
	o.Registries = image.RegistryConfig{Insecure: []string{host}}
	if _, err := s.Pull(context.Background(), host+"/app:1", o); !errors.Is(err, image.ErrPlainHTTP) {
		t.Errorf("--tls-verify=true does not override registries.conf: %v", err)
	}
	o.TLSVerify = nil
	if _, err := s.Pull(context.Background(), host+"/app:1", o); err != nil {
		t.Errorf("pull from a registry marked insecure: %v", err)
	}
	o.Registries = image.RegistryConfig{Blocked: []string{host}}
	if _, err := s.Pull(context.Background(), host+"/app:1", o); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Errorf("pull from a blocked registry: %v", err)
	}
}

func TestRemoteDiffers(t *testing.T) {
	host := serveRegistry(t)
	first := twoLayerImage(t)
	push(t, host, "app:1", first)
	s := copyStore(t)
	o := image.RemoteOptions{TLSVerify: &noVerify}
	img, err := s.Pull(context.Background(), host+"/app:1", image.PullOptions{RemoteOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	if s.RemoteDiffers(context.Background(), img, host+"/app:1", o) {
		t.Error("an unchanged image differs")
	}
	second, err := mutate.Config(first, v1.Config{Cmd: []string{"other"}})
	if err != nil {
		t.Fatal(err)
	}
	push(t, host, "app:1", second)
	if !s.RemoteDiffers(context.Background(), img, host+"/app:1", o) {
		t.Error("a changed image does not differ")
	}
	// An index: this platform's manifest counts.
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: first, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}})
	r, _ := name.ParseReference(host+"/multi:1", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	if s.RemoteDiffers(context.Background(), img, host+"/multi:1", o) {
		t.Error("an index holding the stored manifest differs")
	}
	if s.RemoteDiffers(context.Background(), img, host+"/nothing:1", o) {
		t.Error("a manifest the registry does not have replaces the stored image")
	}
}

func TestPushProgressOnATerminal(t *testing.T) {
	host := serveRegistry(t)
	s := copyStore(t)
	if _, err := s.Add(context.Background(), twoLayerImage(t), []string{"localhost/app:1"}, nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := s.Push(context.Background(), "app:1", host+"/app:1", image.PushOptions{RemoteOptions: image.RemoteOptions{
		TLSVerify: &noVerify, Progress: image.TerminalProgress{Writer: &out}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "\rCopying blobs [====================] ") || !strings.Contains(got, "Copying config ") {
		t.Errorf("terminal push progress:\n%q", got)
	}
}
