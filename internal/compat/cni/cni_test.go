package cni_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run execs a plugin the way a runtime does and returns its stdout and
// exit error.
func run(t *testing.T, plugin, command, stdin string, env ...string) (map[string]any, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(plugins(t), plugin))
	cmd.Env = append([]string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=bc-x", "CNI_NETNS=/nonexistent/bc", "CNI_IFNAME=eth0", "CNI_PATH=/nonexistent"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var m map[string]any
	if jerr := json.Unmarshal(out.Bytes(), &m); jerr != nil {
		t.Fatalf("%s %s: stdout is not JSON: %q (%v)", plugin, command, out.String(), err)
	}
	return m, err
}

func TestVersion(t *testing.T) {
	for _, p := range []string{"berth-bridge", "berth-ipam", "berth-portmap"} {
		m, err := run(t, p, "VERSION", `{"cniVersion":"1.1.0"}`)
		if err != nil {
			t.Fatalf("%s VERSION: %v", p, err)
		}
		if m["cniVersion"] != "1.1.0" || !strings.Contains(toJSON(m["supportedVersions"]), `"1.1.0"`) || !strings.Contains(toJSON(m["supportedVersions"]), `"0.4.0"`) {
			t.Errorf("%s VERSION: %v", p, m)
		}
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Errors are the spec's error object, with the code for the cause, the
// configuration's cniVersion and a message naming the field; none of these
// reach the kernel, so they run without root.
func TestErrorCodes(t *testing.T) {
	cases := []struct {
		name, plugin, cmd, stdin string
		code                     float64
		msg                      string
	}{
		{"bad json", "berth-bridge", "ADD", `{"cniVersion":"1.1.0","name":"bc",`, 6, "unexpected end of JSON"},
		{"unsupported field", "berth-bridge", "ADD", `{"cniVersion":"1.1.0","name":"bc","type":"berth-bridge","vlan":5,"ipam":{}}`, 2, "vlan=5"},
		{"bad bridge name", "berth-bridge", "ADD", `{"cniVersion":"1.1.0","name":"bc","type":"berth-bridge","bridge":"a/b"}`, 7, "bridge:"},
		{"bad subnet", "berth-ipam", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"x","ipam":{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/33"}]]}}`, 7, "ipam.ranges[0][0].subnet"},
		{"no ranges", "berth-ipam", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"x","ipam":{"type":"berth-ipam"}}`, 7, "ipam.ranges"},
		{"two ranges in a set", "berth-ipam", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"x","ipam":{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"10.0.1.0/24"}]]}}`, 2, "ipam.ranges[0]"},
		{"ip outside range", "berth-ipam", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"x","ipam":{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/24"}]]},"runtimeConfig":{"ips":["10.9.0.5/24"]}}`, 7, "10.9.0.5"},
		{"bad port", "berth-portmap", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"berth-portmap","runtimeConfig":{"portMappings":[{"hostPort":70000,"containerPort":80,"protocol":"tcp"}]}}`, 7, "portMappings[0].hostPort"},
		{"host port twice", "berth-portmap", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"berth-portmap","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":8080,"containerPort":81,"protocol":"tcp"}]}}`, 7,
			"runtimeConfig.portMappings: host port 8080/tcp (all addresses) is published twice: to container port 80 (mapping 0) and to container port 81 (mapping 1)"},
		{"broadcast address", "berth-ipam", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"x","ipam":{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/24"}]]},"runtimeConfig":{"ips":["10.0.0.255/24"]}}`, 7,
			"runtimeConfig.ips: 10.0.0.255 is the broadcast address of subnet 10.0.0.0/24; want an address from 10.0.0.1 to 10.0.0.254"},
		{"network address", "berth-ipam", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"x","ipam":{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/24"}]]},"runtimeConfig":{"ips":["10.0.0.0"]}}`, 7,
			"10.0.0.0 is the network address of subnet 10.0.0.0/24"},
		{"loopback subnet", "berth-ipam", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"x","ipam":{"type":"berth-ipam","ranges":[[{"subnet":"127.0.0.0/8"}]]}}`, 7,
			"ipam.ranges[0][0].subnet: 127.0.0.0/8 overlaps the loopback range"},
		{"bad protocol", "berth-portmap", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"berth-portmap","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80,"protocol":"icmp"}]}}`, 7, "protocol"},
		{"portmap unchained", "berth-portmap", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"berth-portmap","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80}]}}`, 7, "prevResult"},
		{"iptables backend", "berth-portmap", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"berth-portmap","backend":"iptables"}`, 2, "backend"},
		{"unknown version", "berth-bridge", "ADD", `{"cniVersion":"9.9.9","name":"bc","type":"berth-bridge"}`, 1, "incompatible"},
		{"GC below 1.1", "berth-bridge", "GC", `{"cniVersion":"1.0.0","name":"bc","type":"berth-bridge"}`, 1, "GC"},
		{"no name", "berth-ipam", "ADD", `{"cniVersion":"1.0.0","type":"x"}`, 7, "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := run(t, c.plugin, c.cmd, c.stdin)
			if err == nil {
				t.Fatalf("exit 0, stdout %v", m)
			}
			if m["code"] != c.code || !strings.Contains(toJSON(m["msg"])+toJSON(m["details"]), c.msg) {
				t.Errorf("got %v, want code %v and %q in msg", m, c.code, c.msg)
			}
			if v, ok := m["cniVersion"]; c.name != "bad json" && (!ok || v == "") {
				t.Errorf("error object has no cniVersion: %v", m)
			}
		})
	}
}

func TestMissingEnvironment(t *testing.T) {
	cmd := exec.Command(filepath.Join(plugins(t), "berth-bridge"))
	cmd.Env = []string{"CNI_COMMAND=ADD"}
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.1.0","name":"bc","type":"berth-bridge"}`)
	out, err := cmd.Output()
	if err == nil {
		t.Fatal("exit 0 without CNI_CONTAINERID")
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	if m["code"] != float64(4) || !strings.Contains(toJSON(m["msg"]), "CNI_CONTAINERID") {
		t.Errorf("got %s", out)
	}
}

// A foreign IPAM plugin is delegated to by berth-cni-dhcp: berth-cni
// hands the call over by exec before touching anything, and says so when
// berth-cni-dhcp is missing.
func TestForeignIPAMHandOver(t *testing.T) {
	conf := `{"cniVersion":"1.0.0","name":"bc","type":"berth-bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"198.18.99.0/24"}]]}}`
	// With berth-cni-dhcp beside it, the delegation runs there (and fails
	// to find host-local in CNI_PATH=/nonexistent: libcni's message).
	m, err := run(t, "berth-bridge", "ADD", conf)
	if err == nil || m["code"] == nil || !strings.Contains(toJSON(m["msg"]), "host-local") {
		t.Errorf("ADD with host-local: %v, %v (want the delegation's failure to find host-local)", m, err)
	}
	// Alone, it names what is missing.
	dir := t.TempDir()
	if out, err := exec.Command("cp", filepath.Join(plugins(t), "berth-cni"), filepath.Join(dir, "berth-bridge")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cmd := exec.Command(filepath.Join(dir, "berth-bridge"))
	cmd.Env = []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=bc-x", "CNI_NETNS=/nonexistent/bc", "CNI_IFNAME=eth0", "CNI_PATH=" + dir}
	cmd.Stdin = strings.NewReader(conf)
	out, err := cmd.Output()
	var e map[string]any
	if jerr := json.Unmarshal(out, &e); jerr != nil || err == nil {
		t.Fatalf("alone: %q, %v", out, err)
	}
	if e["code"] != float64(50) || e["cniVersion"] != "1.0.0" || !strings.Contains(toJSON(e["msg"]), "berth-cni-dhcp") {
		t.Errorf("alone: %v (want code 50 naming berth-cni-dhcp, cniVersion 1.0.0)", e)
	}
}
