package netavark_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/compat/netavark"
)

const dhcpInput = `{"container_id":"c0ffee","container_name":"d1","networks":{"lan":{"interface_name":"eth0"}},` +
	`"network_info":{"lan":{"name":"lan","driver":"macvlan","network_interface":"bdh0","ipam_options":{"driver":"dhcp"}}}}`

// The small netavark binary has no DHCP client or proxy: it hands those
// calls, with their exact input, to the berth binary and passes its exit
// code on; everything else it does itself.
func TestDelegatesDHCPWork(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		input string // what Delegate must get
	}{
		{[]string{"--config", t.TempDir(), "setup", "/proc/self/ns/net"}, dhcpInput, dhcpInput},
		{[]string{"--config", t.TempDir(), "teardown", "/proc/self/ns/net"}, dhcpInput, dhcpInput},
		{[]string{"dhcp-proxy", "--dir", t.TempDir()}, "", ""},
	} {
		var out, errb bytes.Buffer
		var got []byte
		called := false
		code := netavark.Run(context.Background(), tc.args, netavark.Env{
			Stdin: strings.NewReader(tc.stdin), Stdout: &out, Stderr: &errb,
			Getenv: func(k string) string { return map[string]string{"NETAVARK_FW": "none"}[k] },
			Delegate: func(input []byte) (int, error) {
				called, got = true, input
				return 7, nil
			},
		})
		if !called {
			t.Errorf("%v: not delegated (exit %d, stdout %q, stderr %q)", tc.args, code, out.String(), errb.String())
			continue
		}
		if string(got) != tc.input {
			t.Errorf("%v: delegated input %q, want %q", tc.args, got, tc.input)
		}
		if code != 7 || out.Len() != 0 {
			t.Errorf("%v: exit %d stdout %q, want the delegate's exit code 7 and no output of its own", tc.args, code, out.String())
		}
	}

	// A host-local network is never delegated.
	hostLocal := strings.Replace(dhcpInput, `"driver":"dhcp"`, `"driver":"host-local"`, 1)
	code := netavark.Run(context.Background(), []string{"--config", t.TempDir(), "setup", "/nonexistent/netns"}, netavark.Env{
		Stdin: strings.NewReader(hostLocal), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
		Getenv:   func(k string) string { return map[string]string{"NETAVARK_FW": "none"}[k] },
		Delegate: func([]byte) (int, error) { t.Error("host-local network delegated"); return 0, nil },
	})
	if code != 1 {
		t.Errorf("setup of a missing namespace: exit %d, want 1", code)
	}

	// Without DHCP support and nothing to delegate to: a clear error.
	out, _, code := run(t, dhcpInput, "--config", t.TempDir(), "setup", "/proc/self/ns/net")
	if msg := errorLine(t, out); code != 1 || !strings.Contains(msg, "no DHCP support") {
		t.Errorf("exit %d error %q, want 1 and a message about DHCP support", code, msg)
	}
}
