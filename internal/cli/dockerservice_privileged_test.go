package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// dockerTopo is an engine topology with `berth system service` serving
// the Docker API on a socket of the test's, and Docker's own CLI.
type dockerTopo struct {
	*etopo
	docker, sock string
}

func newDockerTopo(t *testing.T) *dockerTopo {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed (Debian package docker.io; scripts/deps.sh installs it)")
	}
	p := &dockerTopo{etopo: newETopo(t), docker: docker, sock: filepath.Join(t.TempDir(), "docker.sock")}
	full := []string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run,
		"--root", p.root, "--runroot", p.runRoot, "--log-level", "debug", "system", "service", "--time", "0", "unix://" + p.sock}
	cmd := exec.Command("nsenter", full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	log, _ := os.Create(filepath.Join(t.TempDir(), "service.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after newETopo's: runs first, so the service is gone
	// before the containers are removed.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if _, err := os.Stat(p.sock); !os.IsNotExist(err) {
			t.Errorf("socket left after the service stopped: %v", err)
		}
		b, _ := os.ReadFile(log.Name())
		if t.Failed() || testing.Verbose() {
			t.Logf("service log:\n%s", b)
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(p.sock); err == nil {
			break
		}
		if i == 100 {
			t.Fatal("service socket never appeared")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// d runs the docker CLI against the service; it returns combined output.
func (p *dockerTopo) d(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.docker, append([]string{"-H", "unix://" + p.sock}, args...)...)
	cmd.Env = []string{"HOME=" + os.TempDir(), "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "DOCKER_CONFIG=" + filepath.Join(p.root, "dockercfg")}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (p *dockerTopo) mustD(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.d(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestPrivilegedDockerCLIContainers: Docker's own CLI (20.10) runs,
// lists, inspects, logs, stops and removes a published container on a
// user-defined network through berth's API; the page is fetched from
// an outside namespace and nothing is left behind.
func TestPrivilegedDockerCLIContainers(t *testing.T) {
	p := newDockerTopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.BannerImage(t, s)
	p.mustD(t, "network", "create", "--subnet", "198.18.40.0/24", "front")
	id := p.mustD(t, "run", "-d", "--name", "web", "--network", "front", "--network-alias", "www", "-p", "8080:80", "-l", "app=web", "banner")
	if len(id) != 64 {
		t.Fatalf("docker run -d printed %q", id)
	}
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "Hello from berth\n" {
		t.Fatalf("page from outside: %q %v", got, err)
	}
	if out := p.mustD(t, "ps", "--format", "{{.Names}} {{.Image}} {{.Ports}} {{.Status}}"); !strings.HasPrefix(out, "web banner 0.0.0.0:8080->80/tcp Up ") {
		t.Errorf("docker ps: %q", out)
	}
	ip := p.mustD(t, "inspect", "-f", "{{.NetworkSettings.Networks.front.IPAddress}} {{.State.Status}} {{.Config.Labels.app}} {{.HostConfig.NetworkMode}}", "web")
	if !strings.HasPrefix(ip, "198.18.40.") || !strings.HasSuffix(ip, " running web front") {
		t.Errorf("docker inspect: %q", ip)
	}
	if out := p.mustD(t, "network", "inspect", "-f", "{{range .Containers}}{{.Name}}{{end}}", "front"); out != "web" {
		t.Errorf("network inspect containers: %q", out)
	}
	// On a user-defined network the resolver is Docker's 127.0.0.11 (served
	// in the container by its monitor); on the default one it is not.
	if out := p.mustD(t, "run", "--rm", "--network", "front", "banner", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 127.0.0.11") ||
		strings.Count(out, "nameserver") != 1 || !strings.Contains(out, "ndots:0") {
		t.Errorf("resolv.conf on a user-defined network:\n%s", out)
	}
	if out := p.mustD(t, "run", "--rm", "banner", "cat", "/etc/resolv.conf"); strings.Contains(out, "127.0.0.11") {
		t.Errorf("resolv.conf on the default network:\n%s", out)
	}
	if out := p.mustD(t, "run", "--rm", "--network", "front", "banner", "nslookup", "www", "127.0.0.11"); !strings.Contains(out, "198.18.40.") {
		t.Errorf("nslookup www at 127.0.0.11: %q", out)
	}
	// A second container on the network reaches the first by its alias;
	// `docker run` attaches before the start and gets the exit code.
	if out := p.mustD(t, "run", "--rm", "--network", "front", "banner", "wget", "-q", "-O", "-", "http://www/"); out != "Hello from berth" {
		t.Errorf("by alias from a second container: %q", out)
	}
	if out, err := p.d("run", "--rm", "banner", "sh", "-c", "echo out; echo err >&2; exit 3"); exitCode(err) != 3 || (out != "out\nerr" && out != "err\nout") {
		t.Errorf("exit code and streams: %v %q", err, out)
	}
	if out := p.mustD(t, "exec", "web", "cat", "/www/index.html"); out != "Hello from berth" {
		t.Errorf("docker exec: %q", out)
	}
	if out, err := p.d("exec", "web", "sh", "-c", "echo e >&2; exit 4"); exitCode(err) != 4 || out != "e" {
		t.Errorf("docker exec exit code: %v %q", err, out)
	}
	if out := p.mustD(t, "exec", "-t", "-e", "X=y", "-w", "/www", "web", "sh", "-c", "echo $X; pwd"); out != "y\r\n/www" {
		t.Errorf("docker exec -t -e -w: %q", out)
	}
	// docker cp both ways, docker top, docker stats.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "note.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.mustD(t, "cp", filepath.Join(host, "note.txt"), "web:/www/")
	if out := p.mustD(t, "exec", "web", "cat", "/www/note.txt"); out != "from the host" {
		t.Errorf("docker cp into the container: %q", out)
	}
	p.mustD(t, "cp", "web:/www", filepath.Join(host, "www"))
	if b, err := os.ReadFile(filepath.Join(host, "www", "index.html")); err != nil || string(b) != "Hello from berth\n" {
		t.Errorf("docker cp out of the container: %q %v", b, err)
	}
	if out, err := p.d("cp", "web:/nonexistent", host); err == nil || !strings.Contains(out, "Could not find the file /nonexistent") {
		t.Errorf("docker cp of a missing file: %v %q", err, out)
	}
	if out := p.mustD(t, "top", "web"); !strings.HasPrefix(out, "UID") || !strings.Contains(out, "httpd -f -v -p 80 -h /www") {
		t.Errorf("docker top:\n%s", out)
	}
	if out := p.mustD(t, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", "web"); !strings.HasPrefix(out, "web 1 ") {
		t.Errorf("docker stats: %q", out)
	}
	if out := p.mustD(t, "logs", "web"); !strings.Contains(out, "200") {
		t.Errorf("docker logs: %q", out)
	}
	if out := p.mustD(t, "ps", "-a", "-q", "--filter", "label=app=web"); len(out) != 12 || !strings.HasPrefix(id, out) {
		t.Errorf("ps -q by label: %q", out)
	}
	p.mustD(t, "stop", "-t", "1", "web")
	if st := p.mustD(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"); st != "exited 137" {
		t.Errorf("after stop: %q", st)
	}
	if _, err := httpGet(p.outside, "198.18.0.1:8080"); err == nil {
		t.Error("page still served after stop")
	}
	p.mustD(t, "start", "web")
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "Hello from berth\n" {
		t.Fatalf("page after start: %q %v", got, err)
	}
	if out, err := p.d("rm", "web"); err == nil || !strings.Contains(out, "cannot remove a running container") {
		t.Errorf("rm running: %v %q", err, out)
	}
	p.mustD(t, "rm", "-f", "web")
	if out, err := p.d("inspect", "web"); err == nil || !strings.Contains(out, "No such object: web") {
		t.Errorf("inspect removed: %v %q", err, out)
	}
	if out := p.mustD(t, "ps", "-a", "--format", "{{.Names}} {{.Status}}"); out != "" {
		t.Errorf("containers left: %q", out)
	}
	p.mustD(t, "network", "rm", "front")
	p.assertClean(t)
}

// TestPrivilegedDockerGwPriority: a container created on two networks
// with gw_priority on the second prefers the second's default route
// (Docker 28's EndpointSettings.GwPriority, sent as compose sends it).
func TestPrivilegedDockerGwPriority(t *testing.T) {
	p := newDockerTopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.BannerImage(t, s)
	p.mustD(t, "network", "create", "--subnet", "198.18.41.0/24", "low")
	p.mustD(t, "network", "create", "--subnet", "198.18.42.0/24", "high")
	body := `{"Image":"banner","Cmd":["sleep","600"],"HostConfig":{"NetworkMode":"low"},` +
		`"NetworkingConfig":{"EndpointsConfig":{"low":{},"high":{"GwPriority":10}}}}`
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", p.sock)
	}}}
	resp, err := hc.Post("http://d/v1.43/containers/create?name=gw", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	p.mustD(t, "start", "gw")
	routes := p.mustD(t, "exec", "gw", "ip", "route")
	var low, high string
	for _, l := range strings.Split(routes, "\n") {
		if strings.HasPrefix(l, "default via 198.18.41.1") {
			low = l
		}
		if strings.HasPrefix(l, "default via 198.18.42.1") {
			high = l
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(low), "metric 100") || !strings.HasSuffix(strings.TrimSpace(high), "metric 90") {
		t.Errorf("default routes (want the high network's at metric 90, the low's at 100):\n%s", routes)
	}
	if got := p.mustD(t, "exec", "gw", "ip", "route", "get", "198.18.0.2"); !strings.Contains(got, "via 198.18.42.1") {
		t.Errorf("route to the outside: %q", got)
	}
	p.mustD(t, "rm", "-f", "gw")
	p.mustD(t, "network", "rm", "low", "high")
}
