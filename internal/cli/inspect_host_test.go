package cli

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/engine"
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
		"Privileged":  false,
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
	for _, k := range []string{"SecurityOpt", "Ulimits", "Devices", "GroupAdd"} {
		if got[k] == nil {
			t.Errorf("HostConfig.%s is null without run flags; Podman prints an empty value", k)
		}
	}
}

// The capabilities as Podman 4.3.1 shows them for the same flags.
func TestInspectCaps(t *testing.T) {
	def := "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_NET_BIND_SERVICE,CAP_SETFCAP,CAP_SETGID,CAP_SETPCAP,CAP_SETUID,CAP_SYS_CHROOT"
	cases := []struct {
		name                         string
		cfg                          engine.Config
		effective, bounding, add, dr string
	}{
		{"default", engine.Config{}, def, def, "", "CAP_AUDIT_WRITE,CAP_MKNOD,CAP_NET_RAW"},
		{"add and drop", engine.Config{Runtime: runopts.Runtime{CapAdd: []string{"CAP_NET_ADMIN", "CAP_SYS_TIME"}, CapDrop: []string{"CAP_CHOWN", "CAP_KILL"}}},
			"CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_NET_ADMIN,CAP_NET_BIND_SERVICE,CAP_SETFCAP,CAP_SETGID,CAP_SETPCAP,CAP_SETUID,CAP_SYS_CHROOT,CAP_SYS_TIME",
			"CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_NET_ADMIN,CAP_NET_BIND_SERVICE,CAP_SETFCAP,CAP_SETGID,CAP_SETPCAP,CAP_SETUID,CAP_SYS_CHROOT,CAP_SYS_TIME",
			"CAP_NET_ADMIN,CAP_SYS_TIME", "CAP_AUDIT_WRITE,CAP_CHOWN,CAP_KILL,CAP_MKNOD,CAP_NET_RAW"},
		{"user", engine.Config{User: "1000", Runtime: runopts.Runtime{CapAdd: []string{"CAP_NET_ADMIN"}}},
			"CAP_NET_ADMIN", "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_NET_ADMIN,CAP_NET_BIND_SERVICE,CAP_SETFCAP,CAP_SETGID,CAP_SETPCAP,CAP_SETUID,CAP_SYS_CHROOT",
			"CAP_NET_ADMIN", "CAP_AUDIT_WRITE,CAP_MKNOD,CAP_NET_RAW"},
		{"drop all", engine.Config{Runtime: runopts.Runtime{CapAdd: []string{"CAP_NET_RAW"}, CapDrop: []string{"ALL"}}},
			"CAP_NET_RAW", "CAP_NET_RAW", "",
			"CAP_AUDIT_WRITE,CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_MKNOD,CAP_NET_BIND_SERVICE,CAP_SETFCAP,CAP_SETGID,CAP_SETPCAP,CAP_SETUID,CAP_SYS_CHROOT"},
	}
	for _, c := range cases {
		e, b, a, d := capsOf(c.cfg)
		got := []string{strings.Join(e, ","), strings.Join(b, ","), strings.Join(a, ","), strings.Join(d, ",")}
		want := []string{c.effective, c.bounding, c.add, c.dr}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, want)
		}
	}
	// --privileged: every capability the kernel has, none dropped.
	e, b, _, d := capsOf(engine.Config{Runtime: runopts.Runtime{Privileged: true}})
	if len(b) < 38 || !reflect.DeepEqual(e, b) || len(d) != 0 || !slices.Contains(b, "CAP_SYS_ADMIN") {
		t.Errorf("privileged: effective %v bounding %v drop %v", e, b, d)
	}
}
