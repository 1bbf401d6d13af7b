package cli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

func TestNeedsUserNS(t *testing.T) {
	for args, want := range map[string]bool{
		"":                              false,
		"version":                       false,
		"--help":                        false,
		"run --help":                    false,
		"-v":                            false,
		"completion bash":               false,
		"run -d img":                    true,
		"--root /x ps":                  true,
		"--log-level debug network ls":  true,
		"--log-level=debug version":     false,
		"--network-config-dir /v run x": true,
		"run --rm img sh -c --help":     true, // the container's argument
		"network ls -h":                 false,
		"--root /x network ls":          true,
		"bogus":                         false,
	} {
		if got := needsUserNS(strings.Fields(args)); got != want {
			t.Errorf("needsUserNS(%q) = %v, want %v", args, got, want)
		}
	}
}

func TestRootlessRuntimeDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := rootlessRuntimeDir(env(map[string]string{"XDG_RUNTIME_DIR": "/run/user/7"}), 7); got != "/run/user/7" {
		t.Errorf("XDG_RUNTIME_DIR: %s", got)
	}
	if got := rootlessRuntimeDir(env(nil), 4242424); !strings.HasSuffix(got, "/berth-run-4242424") {
		t.Errorf("fallback: %s", got)
	}
}

func TestForwardsOf(t *testing.T) {
	ports := []network.PortMapping{
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp", Range: 2},
		{HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
	}
	fs, err := forwardsOf(ports, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []forward{
		{"tcp", netip.MustParseAddr("127.0.0.1"), 8080, 80},
		{"tcp", netip.MustParseAddr("127.0.0.1"), 8081, 81},
		{"udp", netip.Addr{}, 5353, 53},
	}
	if len(fs) != len(want) {
		t.Fatalf("%v", fs)
	}
	for i := range want {
		if fs[i] != want[i] {
			t.Errorf("forward %d: %+v, want %+v", i, fs[i], want[i])
		}
	}
	// Into the rootless netns: host port to the same port.
	fs, _ = forwardsOf(ports[:1], true)
	if fs[1].GuestPort != 8081 {
		t.Errorf("toHost: %+v", fs)
	}
	if _, err := forwardsOf([]network.PortMapping{{HostPort: 9, ContainerPort: 9, Protocol: "sctp"}}, false); err == nil || !strings.Contains(err.Error(), "tcp and udp only") {
		t.Errorf("sctp: %v", err)
	}
}
