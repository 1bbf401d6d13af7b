package cli

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
	"github.com/berthnet/berth/internal/nettest"
)

const dockerRegistry = "/usr/bin/docker-registry"

// startRegistry runs Debian's docker-registry inside ns on addr
// (127.0.0.1:PORT), with TLS when certPEM is given, until the test ends.
func startRegistry(t *testing.T, ns *nettest.NS, addr string, certPEM, keyPEM []byte) {
	t.Helper()
	if _, err := os.Stat(dockerRegistry); err != nil {
		t.Skip("needs docker-registry (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	tlsConf := ""
	if certPEM != nil {
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		tlsConf = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	conf := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
%s`, filepath.Join(dir, "data"), addr, tlsConf)
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	// nsenter execs the registry: the PID is the registry's.
	cmd := exec.Command("nsenter", "--net="+ns.Path(), "--", dockerRegistry, "serve", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("registry %s log:\n%s", addr, b)
		}
	})
	nettest.WaitFor(t, "registry on "+addr, func() bool {
		c, err := nettest.Dial(ns, "tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// cutProxy forwards connections inside ns from a listener to target and
// closes the first connection that has carried more than after bytes
// from the target: a registry going away in the middle of a blob.
type cutProxy struct {
	cuts atomic.Int32
}

func startCutProxy(t *testing.T, ns *nettest.NS, listen, target string, after int64) *cutProxy {
	p := &cutProxy{}
	l := nettest.Listen(t, ns, "tcp", listen)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.forward(ns, c, target, after) }()
		}
	}()
	return p
}

func (p *cutProxy) forward(ns *nettest.NS, c net.Conn, target string, after int64) {
	defer c.Close()
	u, err := nettest.Dial(ns, "tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	go func() { _, _ = io.Copy(u, c); u.Close() }()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := u.Read(buf)
		if k > 0 {
			if _, werr := c.Write(buf[:k]); werr != nil {
				return
			}
			n += int64(k)
			if n > after && p.cuts.CompareAndSwap(0, 1) {
				return // the deferred closes cut both sides
			}
		}
		if err != nil {
			return
		}
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// bEnv runs berth in the host namespace with extra environment; a
// non-nil stderr file replaces the captured stderr.
func (p *etopo) bEnv(env []string, stderr *os.File, args ...string) (string, string, error) {
	full := append([]string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = append(append(os.Environ(), "CONTAINERS_CONF="+p.conf), env...)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	if stderr != nil {
		cmd.Stderr = stderr
	}
	err := cmd.Run()
	return so.String(), se.String(), err
}

// pullOnPTY runs berth pull with stderr on a terminal and returns what
// the terminal showed.
func (p *etopo) pullOnPTY(t *testing.T, env []string, ref string) (id, screen string) {
	t.Helper()
	m, s := openPTY(t)
	defer m.Close()
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&buf, m); close(done) }()
	out, _, err := p.bEnv(env, s, "pull", ref)
	s.Close()
	<-done // the master reads EIO once the last slave is closed
	if err != nil {
		t.Fatalf("pull on a terminal: %v\n%s", err, buf.String())
	}
	return strings.TrimSpace(out), buf.String()
}

// TestPrivilegedRegistry: push to and pull from Debian's docker-registry
// over plain HTTP (registries.conf insecure) and over TLS with a CA in
// certs.d; per-blob progress on a terminal; a pull that survives the
// registry connection dying half way through a blob; run --pull.
func TestPrivilegedRegistry(t *testing.T) {
	p := newETopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	bb := imagetest.BusyboxImage(t, s)
	startRegistry(t, p.host, "127.0.0.1:5000", nil, nil)
	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.conf")
	err = os.WriteFile(conf, []byte("[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n\n[[registry]]\nlocation = \"127.0.0.1:5001\"\ninsecure = true\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	certsD := filepath.Join(dir, "certs.d")
	env := []string{image.EnvRegistriesConf + "=" + conf, image.EnvCertsDirs + "=" + certsD}
	noConf := []string{image.EnvRegistriesConf + "=" + filepath.Join(dir, "none"), image.EnvCertsDirs + "=" + certsD}
	const plain = "127.0.0.1:5000/test/busybox:1"

	if _, se, err := p.bEnv(noConf, nil, "push", "localhost/busybox", plain); err == nil || !strings.Contains(se, "insecure registry") {
		t.Fatalf("push over plain HTTP without registries.conf: %v %s", err, se)
	}
	if _, se, err := p.bEnv(env, nil, "push", "localhost/busybox", plain); err != nil {
		t.Fatalf("push: %v %s", err, se)
	}
	p.mustB(t, "rmi", "localhost/busybox")

	// A pull on a terminal shows each blob's bytes.
	id, screen := p.pullOnPTY(t, env, plain)
	if id != bb.ID {
		t.Errorf("pulled %s, want %s", id, bb.ID)
	}
	progress := regexp.MustCompile(`Copying blob [0-9a-f]{12} \[=+\] [0-9.]+(KiB|MiB) / [0-9.]+(KiB|MiB)`)
	if !progress.MatchString(screen) || !strings.Contains(screen, " done") {
		t.Errorf("no per-blob progress on the terminal:\n%q", screen)
	}
	// Not on a terminal: a line per step.
	_, se, err := p.bEnv(env, nil, "pull", plain)
	if err != nil || !strings.Contains(se, "Trying to pull "+plain+"...\nGetting image source signatures\nCopying blob sha256:") ||
		!strings.Contains(se, "Writing manifest to image destination\n") || strings.Contains(se, "\r") {
		t.Errorf("pull without a terminal: %v\n%s", err, se)
	}
	p.mustB(t, "rmi", plain)

	// The connection dies in the middle of the layer; the pull retries.
	proxy := startCutProxy(t, p.host, "127.0.0.1:5001", "127.0.0.1:5000", 256<<10)
	out, se, err := p.bEnv(env, nil, "pull", "127.0.0.1:5001/test/busybox:1")
	if err != nil || strings.TrimSpace(out) != bb.ID || proxy.cuts.Load() != 1 || !strings.Contains(se, "Failed, retrying in") {
		t.Errorf("pull through a dying connection: %v cuts %d out %q\n%s", err, proxy.cuts.Load(), out, se)
	}
	p.mustB(t, "rmi", "-a")

	// run --pull.
	if _, se, err := p.bEnv(env, nil, "run", "--rm", "--network", "none", "--pull=never", plain, "true"); exitCode(err) != 125 || se != "Error: "+plain+": image not known\n" {
		t.Errorf("run --pull=never of a missing image: %v %q", err, se)
	}
	out, se, err = p.bEnv(env, nil, "run", "--rm", "--network", "none", "--pull=always", plain, "echo", "pulled-and-ran")
	if err != nil || out != "pulled-and-ran\n" || !strings.Contains(se, "Trying to pull "+plain) {
		t.Errorf("run --pull=always: %v %q %s", err, out, se)
	}
	out, se, err = p.bEnv(env, nil, "create", "--network", "none", "--pull=newer", plain, "true")
	if err != nil || se != "" {
		t.Errorf("create --pull=newer of an unchanged image: %v %q %s", err, out, se)
	}

	// TLS with the CA in certs.d/127.0.0.1:5443/ca.crt.
	caPEM, certPEM, keyPEM := imagetest.TestCA(t)
	startRegistry(t, p.host, "127.0.0.1:5443", certPEM, keyPEM)
	const secure = "127.0.0.1:5443/test/busybox:tls"
	if _, se, err := p.bEnv(env, nil, "push", plain, secure); err == nil || !strings.Contains(se, "certificate") {
		t.Errorf("push over TLS without the CA: %v %s", err, se)
	}
	if err := os.MkdirAll(filepath.Join(certsD, "127.0.0.1:5443"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certsD, "127.0.0.1:5443", "ca.crt"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, se, err := p.bEnv(env, nil, "push", plain, secure); err != nil {
		t.Fatalf("push over TLS: %v %s", err, se)
	}
	p.mustB(t, "rm", "-a", "-f")
	p.mustB(t, "rmi", "-a")
	if out, se, err := p.bEnv(env, nil, "pull", "-q", secure); err != nil || strings.TrimSpace(out) != bb.ID || se != "" {
		t.Errorf("pull over TLS: %v %q %s", err, out, se)
	}
}

// TestPrivilegedCommitAndExport: a container on overlayfs deletes a
// file, replaces a directory and adds a file; commit keeps exactly that
// (whiteout and opaque directory) as a layer, export shows the merged
// tree.
func TestPrivilegedCommitAndExport(t *testing.T) {
	p := newETopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	base := imagetest.Import(t, s, "base", map[string]imagetest.File{"data/a": {Content: "A"}, "data/b": {Content: "B"}}, `CMD ["sh"]`)
	p.mustB(t, "run", "--name", "c1", "--network", "none", "-e", "FROM_RUN=1", "base",
		"sh", "-c", "rm -rf /data && mkdir /data && echo C > /data/c && rm /bin/wc && echo new > /added")
	if d, err := s.ContainerDriver(mustID(t, p, "c1")); err != nil || d != "overlay" {
		t.Skipf("root filesystem driver %q (%v): the overlay path is what this test is for", d, err)
	}
	out, se, err := p.b3("commit", "-q", "-c", `CMD ["sh","-c","ls /data; test -e /bin/wc || echo nowc; cat /added; echo $FROM_RUN"]`,
		"-c", "LABEL stage=committed", "-m", "snapshot", "--author", "Ann", "c1", "snap")
	if err != nil || len(strings.TrimSpace(out)) != 64 || se != "" {
		t.Fatalf("commit: %v %q %s", err, out, se)
	}
	id := strings.TrimSpace(out)
	img, err := s.Lookup("snap")
	if err != nil || img.ID != id || len(img.Layers) != len(base.Layers)+1 || img.Config.Labels["stage"] != "committed" {
		t.Fatalf("committed image %+v %v", img, err)
	}
	if got := p.mustB(t, "image", "inspect", "--format", "{{.Author}} {{.Comment}}", "snap"); got != "Ann snapshot\n" {
		t.Errorf("author and comment: %q", got)
	}
	if got := p.mustB(t, "run", "--rm", "--network", "none", "snap"); got != "c\nnowc\nnew\n1\n" {
		t.Errorf("container of the committed image: %q", got)
	}

	tarPath := filepath.Join(t.TempDir(), "c1.tar")
	p.mustB(t, "export", "-o", tarPath, "c1")
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name] = true
	}
	for n, want := range map[string]bool{"added": true, "data/c": true, "bin/busybox": true, "data/a": false, "bin/wc": false} {
		if names[n] != want {
			t.Errorf("export: %s present %v, want %v", n, names[n], want)
		}
	}
	if _, se, err := p.b3("export", "nosuch"); exitCode(err) != 125 || !strings.Contains(se, "nosuch") {
		t.Errorf("export of an unknown container: %v %s", err, se)
	}
	p.mustB(t, "rm", "-a", "-f")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), filepath.Join(p.root, "images")) {
		t.Error("a root filesystem is still mounted after rm")
	}
}

// mustID is a container's full ID.
func mustID(t *testing.T, p *etopo, name string) string {
	t.Helper()
	return strings.TrimSpace(p.mustB(t, "inspect", "--type", "container", "--format", "{{.Id}}", name))
}
