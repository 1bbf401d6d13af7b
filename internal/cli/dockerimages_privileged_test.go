package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
	"github.com/berthnet/berth/internal/nettest"
)

// startServiceIn runs `berth system service` inside the topology's host
// namespace with extra environment and returns its socket.
func (p *etopo) startServiceIn(t *testing.T, env []string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	cmd := exec.Command("nsenter", "--net="+p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run,
		"--root", p.root, "--runroot", p.runRoot, "system", "service", "--time", "0", "unix://"+sock)
	cmd.Env = append(append(os.Environ(), "CONTAINERS_CONF="+p.conf), env...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	nettest.WaitFor(t, "service socket", func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	return sock
}

// TestPrivilegedDockerPull: docker pull through berth's service from
// Debian's docker-registry, with Docker's progress lines.
func TestPrivilegedDockerPull(t *testing.T) {
	p := newETopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	bb := imagetest.BusyboxImage(t, s)
	startRegistry(t, p.host, "127.0.0.1:5000", nil, nil)
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte("[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{image.EnvRegistriesConf + "=" + conf}
	const ref = "127.0.0.1:5000/test/busybox:1"
	if _, se, err := p.bEnv(env, nil, "push", "localhost/busybox", ref); err != nil {
		t.Fatalf("push: %v %s", err, se)
	}
	p.mustB(t, "rmi", "localhost/busybox")

	run := dockerCLI(t, p.startServiceIn(t, env))
	out := run(true, "pull", ref)
	for _, want := range []string{"1: Pulling from test/busybox", ": Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	img, err := s.Lookup(ref)
	if err != nil || img.ID != bb.ID {
		t.Fatalf("pulled image %+v %v, want ID %s", img, err, bb.ID)
	}
	if got := run(true, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); got != ref+" "+bb.ID[:12] {
		t.Errorf("images: %q", got)
	}
	if out := run(true, "pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Errorf("second pull:\n%s", out)
	}
	if out := run(false, "pull", "127.0.0.1:5000/test/nosuch:1"); !strings.Contains(out, "Error response from daemon") {
		t.Errorf("pull of a missing image:\n%s", out)
	}
	// The pulled image runs with berth.
	if got := p.mustB(t, "run", "--rm", "--network", "none", ref, "echo", "ran"); got != "ran\n" {
		t.Errorf("run the pulled image: %q", got)
	}
	// docker run of a missing image pulls it through the service first.
	run(true, "rmi", ref)
	if out := run(true, "run", "--rm", "--network", "none", ref, "echo", "ran"); !strings.Contains(out, "Status: Downloaded newer image for "+ref) || !strings.HasSuffix(out, "\nran") {
		t.Errorf("docker run of a missing image:\n%s", out)
	}
}
