package cli

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dnet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// startService runs the API on the test world's directories, as `berth
// system service unix://SOCK` does, and returns the socket path.
func startService(t *testing.T, tw *testWorld) string {
	t.Helper()
	w, err := openWorld(tw.env, &globals{configDir: tw.cfg, runDir: tw.rundir, logLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, cleanup, err := serviceListener(tw.env, "unix://"+sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveAPI(ctx, w, ln, 0) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
		cleanup()
	})
	return sock
}

func TestDockerAPINetworks(t *testing.T) {
	tw := newTestWorld(t, "")
	sock := startService(t, tw)
	c, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	res, err := c.NetworkCreate(ctx, "front", client.NetworkCreateOptions{
		IPAM:    &dnet.IPAM{Config: []dnet.IPAMConfig{{Subnet: netip.MustParsePrefix("198.18.7.0/24")}}},
		Options: map[string]string{"com.docker.network.bridge.name": "brfront"},
		Labels:  map[string]string{"com.docker.compose.network": "front"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The network is berth's: the CLI sees it with the gateway berth chose.
	n := loadNet(t, tw, "front")
	if n.ID != res.ID || n.NetworkInterface != "brfront" || !n.DNSEnabled || n.Subnets[0].Gateway != netip.MustParseAddr("198.18.7.1") ||
		n.Labels["com.docker.compose.network"] != "front" {
		t.Fatalf("stored network %+v", n)
	}
	mustRun(t, tw, "network", "create", "--subnet", "198.18.8.0/24", "back")
	if _, err := c.NetworkCreate(ctx, "back", client.NetworkCreateOptions{}); !cerrdefs.IsConflict(err) {
		t.Fatalf("duplicate: %v", err)
	}
	// Overlapping subnets are berth's own validation, answered as 400/500 with its message.
	if _, err := c.NetworkCreate(ctx, "dup", client.NetworkCreateOptions{IPAM: &dnet.IPAM{Config: []dnet.IPAMConfig{{Subnet: netip.MustParsePrefix("198.18.8.0/25")}}}}); err == nil {
		t.Fatal("overlapping subnet accepted")
	}
	in, err := c.NetworkInspect(ctx, "back", client.NetworkInspectOptions{})
	if err != nil || in.Network.IPAM.Config[0].Subnet.String() != "198.18.8.0/24" || in.Network.IPAM.Config[0].Gateway.String() != "198.18.8.1" {
		t.Fatalf("inspect back: %+v %v", in.Network, err)
	}
	if _, err := c.NetworkRemove(ctx, "front", client.NetworkRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tw.cfg, "front.json")); !os.IsNotExist(err) {
		t.Fatalf("front.json after remove: %v", err)
	}
	if _, err := c.NetworkConnect(ctx, "back", client.NetworkConnectOptions{Container: "nosuch"}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("connect missing container: %v", err)
	}
}

// TestDockerCLINetworks drives the service with Docker's own CLI (the
// docker.io package), unmodified.
func TestDockerCLINetworks(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed (Debian package docker.io; scripts/deps.sh installs it)")
	}
	tw := newTestWorld(t, "")
	sock := startService(t, tw)
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, docker, append([]string{"-H", "unix://" + sock}, args...)...)
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	id := run("network", "create", "--subnet", "198.18.9.0/24", "--gateway", "198.18.9.254", "--ip-range", "198.18.9.0/25", "--label", "app=web", "-o", "com.docker.network.driver.mtu=1400", "web")
	n := loadNet(t, tw, "web")
	if n.ID != id || n.Subnets[0].Gateway.String() != "198.18.9.254" || n.Subnets[0].LeaseRange == nil || n.Options["mtu"] != "1400" {
		t.Fatalf("stored %+v (docker said %s)", n, id)
	}
	if got := run("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", "--filter", "label=app=web"); got != "web bridge local" {
		t.Fatalf("ls: %q", got)
	}
	if got := run("network", "ls", "--format", "{{.Name}}"); got != "host\nnone\npodman\nweb" {
		t.Fatalf("ls all: %q", got)
	}
	if got := run("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}}{{end}} {{index .Options \"com.docker.network.driver.mtu\"}}", "web"); got != "198.18.9.0/24 198.18.9.254 198.18.9.0/25 1400" {
		t.Fatalf("inspect: %q", got)
	}
	if got := run("network", "rm", "web"); got != "web" {
		t.Fatalf("rm: %q", got)
	}
	if got := run("network", "ls", "-q", "--filter", "name=web"); got != "" {
		t.Fatalf("after rm: %q", got)
	}
}
