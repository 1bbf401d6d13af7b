package cli

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/berthnet/berth/internal/runopts"
)

// The run flags' settings show in inspect's HostConfig under Podman's keys
// and types; a container without them shows Podman's empty values, not
// nulls.
func TestInspectHostRuntime(t *testing.T) {
	var h inspectHost
	runtimeHost(&h, runopts.Runtime{
		CapAdd: []string{"CAP_NET_ADMIN"}, CapDrop: []string{"CAP_CHOWN"}, NoNewPrivileges: true,
		Resources: runopts.Resources{Memory: 64 << 20, MemorySwap: 128 << 20, CPUQuota: 150000, CPUPeriod: 100000, CPUShares: 512, PidsLimit: 100},
		Sysctls:   map[string]string{"net.ipv4.ip_forward": "1"},
		Ulimits:   []runopts.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "host"}},
		Devices:   []runopts.Device{{Source: "/dev/null", Destination: "/dev/xnull", Permissions: "rwm"}},
		GroupAdd:  []string{"wheel"}, Init: true,
	})
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"CapAdd": []any{"CAP_NET_ADMIN"}, "CapDrop": []any{"CAP_CHOWN"}, "Privileged": false,
		"SecurityOpt": []any{"no-new-privileges"}, "Memory": float64(64 << 20), "MemorySwap": float64(128 << 20),
		"NanoCpus": float64(1.5e9), "CpuShares": float64(512), "CpuQuota": float64(150000), "CpuPeriod": float64(100000),
		"PidsLimit": float64(100),
		"Ulimits":   []any{map[string]any{"Name": "RLIMIT_NOFILE", "Soft": float64(1024), "Hard": float64(2048)}},
		"Devices":   []any{map[string]any{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rwm"}},
		"GroupAdd":  []any{"wheel"}, "Init": true,
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("HostConfig.%s = %#v, want %#v", k, got[k], v)
		}
	}

	var empty inspectHost
	runtimeHost(&empty, runopts.Runtime{})
	b, _ = json.Marshal(empty)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"CapAdd", "CapDrop", "SecurityOpt", "Ulimits", "Devices", "GroupAdd"} {
		if got[k] == nil {
			t.Errorf("HostConfig.%s is null without run flags; Podman prints an empty value", k)
		}
	}
}
