package netavark_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

// plugins writes netavark plugin drivers as shell scripts into a new
// directory: ok-plugin (records its arguments and input, writes to
// stderr, answers a status block, and on create adds a
// network_interface), error-plugin (fails as netavark's example does)
// and bad-create (changes the network's name).
func plugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	scripts := map[string]string{
		"ok-plugin": `#!/bin/sh
echo "$@" >> "$(dirname "$0")/args"
cat > "$(dirname "$0")/input.$1"
echo "stderr $1" >&2
case $1 in
setup) echo '{"interfaces":{"dummy0":{"mac_address":"02:00:00:00:00:01","subnets":[]}}}' ;;
create) sed 's/"driver":"ok-plugin"/"driver":"ok-plugin","network_interface":"eth9"/' "$(dirname "$0")/input.create" ;;
esac
`,
		"error-plugin": `#!/bin/sh
cat >/dev/null
echo "{\"error\":\"$1 error\"}"
exit 1
`,
		"bad-create": `#!/bin/sh
sed 's/"name":"p1"/"name":"other"/'
`,
		"not-executable": "#!/bin/sh\n",
	}
	for name, body := range scripts {
		mode := os.FileMode(0o755)
		if name == "not-executable" {
			mode = 0o644
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func pluginSetupInput(driver string) string {
	return `{"container_id":"someID","container_name":"someName","networks":{"plugin-net":{"interface_name":"eth0"}},
	 "network_info":{"plugin-net":{"name":"plugin-net","id":"` + id64 + `","driver":"` + driver + `","network_interface":"dummy0"}}}`
}

// A network whose driver is a plugin's is set up and torn down by
// running the plugin with netavark's arguments and input; its stderr is
// netavark's and its status block is the network's.
func TestPluginSetupAndTeardown(t *testing.T) {
	dir := plugins(t)
	args := []string{"--config", t.TempDir(), "--plugin-directory", t.TempDir(), "--plugin-directory", dir}
	out, errOut, code := run(t, pluginSetupInput("ok-plugin"), append(args, "setup", "/proc/self/ns/net")...)
	var res map[string]network.StatusBlock
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["plugin-net"].Interfaces["dummy0"].MACAddress != "02:00:00:00:00:01" {
		t.Fatalf("setup: %d %q %q", code, out, errOut)
	}
	if errOut != "stderr setup\n" {
		t.Errorf("stderr %q", errOut)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "input.setup"))
	var in struct {
		ContainerID    string                    `json:"container_id"`
		Network        network.Network           `json:"network"`
		NetworkOptions network.PerNetworkOptions `json:"network_options"`
	}
	if err := json.Unmarshal(b, &in); err != nil || in.ContainerID != "someID" || in.Network.Name != "plugin-net" || in.NetworkOptions.InterfaceName != "eth0" {
		t.Errorf("plugin input %s: %v", b, err)
	}
	// teardown calls the plugin even when the namespace is gone.
	out, errOut, code = run(t, pluginSetupInput("ok-plugin"), append(args, "teardown", "/proc/does-not-exist/ns/net")...)
	if code != 0 || out != "" || errOut != "stderr teardown\n" {
		t.Errorf("teardown: %d %q %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "args")); string(b) != "setup /proc/self/ns/net\nteardown /proc/does-not-exist/ns/net\n" {
		t.Errorf("plugin arguments: %q", b)
	}
}

// A failing plugin's error is netavark's line; a driver no plugin
// directory has (or only as a file that is not executable) is unknown.
func TestPluginErrors(t *testing.T) {
	dir := plugins(t)
	for _, verb := range []string{"setup", "teardown"} {
		out, _, code := run(t, pluginSetupInput("error-plugin"), "--config", t.TempDir(), "--plugin-directory", dir, verb, "/proc/self/ns/net")
		want := `plugin "error-plugin" failed: exit code 1, message: ` + verb + ` error`
		if got := errorLine(t, out); code != 1 || got != want {
			t.Errorf("%s: %d %q, want %q", verb, code, got, want)
		}
	}
	for _, drv := range []string{"not-executable", "missing"} {
		out, _, code := run(t, pluginSetupInput(drv), "--config", t.TempDir(), "--plugin-directory", dir, "setup", "/proc/self/ns/net")
		if got := errorLine(t, out); code != 1 || got != `unknown network driver "`+drv+`"` {
			t.Errorf("%s: %d %q", drv, code, got)
		}
	}
}

// create hands a plugin's network to the plugin, which must keep its
// name, ID and driver.
func TestPluginCreate(t *testing.T) {
	dir := plugins(t)
	in := strings.Replace(createInput, "NET", `{"name":"p1","id":"`+id64+`","driver":"ok-plugin"}`, 1)
	out, _, code := run(t, in, "--plugin-directory", dir, "create")
	var n network.Network
	if code != 0 || json.Unmarshal([]byte(out), &n) != nil || n.NetworkInterface != "eth9" || n.Name != "p1" {
		t.Fatalf("create: %d %q", code, out)
	}
	out, _, code = run(t, strings.Replace(in, "ok-plugin", "bad-create", 1), "--plugin-directory", dir, "create")
	if got := errorLine(t, out); code != 1 || got != "bad-create plugin invalid result: changed network name" {
		t.Errorf("bad create: %d %q", code, got)
	}
	out, _, code = run(t, in, "create")
	if got := errorLine(t, out); code != 1 || got != "plugin directory not provided" {
		t.Errorf("no plugin directory: %d %q", code, got)
	}
	out, _, code = run(t, in, "--plugin-directory", t.TempDir(), "create")
	if got := errorLine(t, out); code != 1 || got != `plugin for driver "ok-plugin" not found in plugin directories` {
		t.Errorf("no plugin: %d %q", code, got)
	}
}
