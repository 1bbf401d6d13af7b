package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/netstore"
)

// podman runs the installed Podman 4.3.1 on the test world's network
// directory, with private storage and its own network and mount namespace:
// it reads the config files and touches nothing else. The test is skipped
// without podman or root.
func podman(t *testing.T, tw *testWorld, args ...string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("round trip with podman: needs root (podman runs rootful on private storage)")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed")
	}
	d := t.TempDir()
	conf := podmanConf(t, tw, d)
	full := append([]string{"--net", "--mount", "--propagation", "private", "podman",
		"--root", filepath.Join(d, "r"), "--runroot", filepath.Join(d, "rr"), "--tmpdir", filepath.Join(d, "t"),
		"--network-config-dir", tw.cfg}, args...)
	cmd := exec.Command("unshare", full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("podman %s: %s", strings.Join(args, " "), stderr.String())
	}
	return string(out), err
}

// podmanConf writes a containers.conf for Podman: the test world's, with
// helper_binaries_dir naming only a directory that holds a copy of berth as
// `netavark` and `aardvark-dns`, so Podman uses berth as its backend and
// needs no netavark of its own (a fresh machine has none).
func podmanConf(t *testing.T, tw *testWorld, d string) string {
	t.Helper()
	helpers := filepath.Join(d, "helpers")
	if err := os.MkdirAll(helpers, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(berthBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"netavark", "aardvark-dns"} {
		if err := os.WriteFile(filepath.Join(helpers, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base, err := os.ReadFile(tw.conf)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(d, "podman-containers.conf")
	body := fmt.Sprintf("%s\n[engine]\nhelper_binaries_dir = [%q]\n", base, helpers)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestPodmanReadsBerthNetworks: networks berth creates, with every create
// flag Podman 4.3.1 knows, are shown by Podman exactly as berth shows them.
func TestPodmanReadsBerthNetworks(t *testing.T) {
	tw := newTestWorld(t, "empty")
	creates := [][]string{
		{"network", "create"},
		{"network", "create", "--subnet", "198.19.40.0/24", "--gateway", "198.19.40.3", "--ip-range", "198.19.40.128/25", "--label", "app=web", "--label", "tier=1", "full"},
		{"network", "create", "--ipv6", "--subnet", "198.19.41.0/24", "--subnet", "fd00:41::/64", "dual"},
		{"network", "create", "--internal", "--disable-dns", "-o", "mtu=1400", "-o", "isolate=true", "-o", "vlan=5", "opts"},
		{"network", "create", "--ipam-driver", "none", "noipam"},
		{"network", "create", "-d", "macvlan", "-o", "parent=lo", "-o", "mode=vepa", "--subnet", "198.19.42.0/24", "mv"},
	}
	var names []string
	for _, c := range creates {
		rc, out, errOut := tw.run(t, c...)
		if rc != 0 {
			t.Fatalf("berth %v: rc %d %s", c, rc, errOut)
		}
		names = append(names, strings.TrimSpace(out))
	}
	args := append([]string{"network", "inspect"}, names...)
	_, berthOut, _ := tw.run(t, args...)
	podOut, err := podman(t, tw, args...)
	if err != nil {
		t.Fatal(err)
	}
	if podOut != berthOut {
		t.Errorf("podman shows berth's networks differently\n--- podman\n%s--- berth\n%s", podOut, berthOut)
	}
	lsArgs := []string{"network", "ls", "--no-trunc"}
	_, berthLs, _ := tw.run(t, lsArgs...)
	podLs, err := podman(t, tw, lsArgs...)
	if err != nil || podLs != berthLs {
		t.Errorf("ls differs (%v)\n--- podman\n%s--- berth\n%s", err, podLs, berthLs)
	}
}

// TestBerthReadsPodmanNetworks: networks Podman 4.3.1 creates load in berth
// unchanged, and berth writes them back byte for byte.
func TestBerthReadsPodmanNetworks(t *testing.T) {
	tw := newTestWorld(t, "empty")
	for _, c := range [][]string{
		{"network", "create"},
		{"network", "create", "--subnet", "198.19.50.0/24", "--gateway", "198.19.50.3", "--ip-range", "198.19.50.128/25", "--label", "app=web", "pfull"},
		{"network", "create", "--ipv6", "pdual"},
		{"network", "create", "--internal", "-o", "mtu=1400", "-o", "isolate=1", "popts"},
	} {
		if _, err := podman(t, tw, c...); err != nil {
			t.Fatalf("podman %v: %v", c, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(tw.cfg, "*.json"))
	if len(files) != 4 {
		t.Fatalf("podman wrote %d files", len(files))
	}
	for _, f := range files {
		n, err := netstore.LoadFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		b, _ := netstore.Marshal(n)
		orig, _ := os.ReadFile(f)
		if string(b) != string(orig) {
			t.Errorf("%s: berth writes it back differently\n--- berth\n%s--- podman\n%s", f, b, orig)
		}
	}
	args := []string{"network", "inspect", "podman1", "pfull", "pdual", "popts"}
	_, berthOut, _ := tw.run(t, args...)
	podOut, _ := podman(t, tw, args...)
	if podOut != berthOut {
		t.Errorf("inspect differs\n--- podman\n%s--- berth\n%s", podOut, berthOut)
	}
	// berth's next automatic network avoids Podman's names, bridges and
	// subnets.
	_, out, _ := tw.run(t, "network", "create")
	if strings.TrimSpace(out) != "podman5" {
		t.Errorf("next automatic name %q, want podman5", out)
	}
}

// TestDefaultNetworkExport: the memory-only default network, exported to
// podman.json as the guide does (jq's two-space indent), is then read from
// the file by both berth and Podman.
func TestDefaultNetworkExport(t *testing.T) {
	tw := newTestWorld(t, "empty")
	_, out, _ := tw.run(t, "network", "inspect", "podman")
	if !strings.Contains(out, `"id": "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9"`) ||
		!strings.Contains(out, `"network_interface": "podman0"`) || !strings.Contains(out, `"subnet": "10.88.0.0/16"`) ||
		!strings.Contains(out, `"dns_enabled": false`) || !strings.Contains(out, `"created": "2026-11-27T15:00:00Z"`) {
		t.Fatalf("default network:\n%s", out)
	}
	exported := `{
  "name": "podman",
  "id": "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9",
  "driver": "bridge",
  "network_interface": "podman0",
  "created": "2026-11-27T10:00:00Z",
  "subnets": [{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}],
  "ipv6_enabled": false,
  "internal": false,
  "dns_enabled": true,
  "ipam_options": {"driver": "host-local"}
}
`
	if err := os.WriteFile(filepath.Join(tw.cfg, "podman.json"), []byte(exported), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, _ = tw.run(t, "network", "inspect", "--format", "{{.Created}} {{.DNSEnabled}}", "podman")
	if out != "2026-11-27 10:00:00 +0000 UTC true\n" {
		t.Errorf("after export the file should win: %q", out)
	}
	if rc, _, errOut := tw.run(t, "network", "rm", "podman"); rc != 125 || !strings.Contains(errOut, "default network podman cannot be removed") {
		t.Errorf("rm of the exported default: %d %s", rc, errOut)
	}
	if pod, err := podman(t, tw, "network", "inspect", "--format", "{{.Created}} {{.DNSEnabled}}", "podman"); err == nil && pod != out {
		t.Errorf("podman reads the export as %q, berth as %q", pod, out)
	}
}
