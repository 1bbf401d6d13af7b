package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/runopts"
)

func TestBoundingSet(t *testing.T) {
	got := boundingSet("Name:\tx\nCapBnd:\t0000000000001005\n")
	if !slices.Equal(got, []string{"CAP_CHOWN", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN"}) {
		t.Errorf("%v", got)
	}
	if got := boundingSet("CapBnd:\t000001fffeffffff\n"); len(got) != 40 || slices.Contains(got, "CAP_SYS_RESOURCE") {
		t.Errorf("%v", got)
	}
	if got := boundingSet(""); len(got) != len(runopts.AllCapabilities) {
		t.Errorf("none: %v", got)
	}
}

func TestProcessSecurity(t *testing.T) {
	sec, err := processSecurity(runopts.Runtime{})
	if err != nil || sec.Capabilities != nil || sec.Rlimits != nil {
		t.Errorf("defaults: %+v %v", sec, err)
	}
	sec, _ = processSecurity(runopts.Runtime{CapDrop: []string{"ALL"}, CapAdd: []string{"CAP_NET_RAW"}, Ulimits: []runopts.Ulimit{{Name: "nofile", Soft: 5, Hard: -1}}})
	if !slices.Equal(sec.Capabilities, []string{"CAP_NET_RAW"}) || !slices.Equal(sec.UserCaps, []string{"CAP_NET_RAW"}) {
		t.Errorf("drop all: %+v", sec)
	}
	if len(sec.Rlimits) != 1 || sec.Rlimits[0].Type != "RLIMIT_NOFILE" || sec.Rlimits[0].Hard != ^uint64(0) {
		t.Errorf("rlimits %+v", sec.Rlimits)
	}
	// --privileged: the bounding set; --cap-drop is ignored, as by Podman.
	sec, _ = processSecurity(runopts.Runtime{Privileged: true, CapDrop: []string{"CAP_SYS_ADMIN"}})
	if !slices.Equal(slices.Sorted(slices.Values(sec.Capabilities)), slices.Sorted(slices.Values(kernelCapabilities()))) {
		t.Errorf("privileged: %v", sec.Capabilities)
	}
}

func TestResources(t *testing.T) {
	if resources(runopts.Resources{}, true) != nil {
		t.Error("no limits gave resources")
	}
	if r := resources(runopts.Resources{Memory: 100}, true); *r.Memory.Swap != 200 {
		t.Errorf("default swap %d", *r.Memory.Swap)
	}
	if r := resources(runopts.Resources{Memory: 100}, false); r.Memory.Swap != nil {
		t.Errorf("swap without swap accounting: %d", *r.Memory.Swap)
	}
	r := resources(runopts.Resources{Memory: 100, MemorySwap: -1, CPUQuota: 50000, CPUPeriod: 100000, CPUShares: 2, PidsLimit: -1}, true)
	if *r.Memory.Limit != 100 || *r.Memory.Swap != -1 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 2 || *r.Pids.Limit != -1 {
		t.Errorf("%+v", r)
	}
	if r := resources(runopts.Resources{MemoryReservation: 50}, true); r.Memory == nil || *r.Memory.Reservation != 50 || r.Memory.Limit != nil || r.Memory.Swap != nil {
		t.Errorf("reservation alone: %+v", r.Memory)
	}
	if r := resources(runopts.Resources{Memory: 100, MemoryReservation: 50}, true); *r.Memory.Reservation != 50 || *r.Memory.Limit != 100 {
		t.Errorf("reservation and limit: %+v", r.Memory)
	}
}

func TestCheckSysctl(t *testing.T) {
	host := &Config{Net: runopts.NetMode{Kind: runopts.ModeHost}}
	host.Runtime.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
	if err := checkSysctl(host, "net.ipv4.ip_forward"); err == nil || err.Error() != "sysctl net.ipv4.ip_forward=1 can't be set since Network Namespace set to host" {
		t.Errorf("host: %v", err)
	}
	if err := checkSysctl(host, "kernel.shmmax"); err != nil {
		t.Errorf("ipc on host network: %v", err)
	}
	member := &Config{Net: runopts.NetMode{Kind: runopts.ModeContainer}, Pod: "p"}
	if checkSysctl(member, "net.core.somaxconn") == nil || checkSysctl(member, "fs.mqueue.msg_max") == nil {
		t.Error("pod member may set the pod's sysctls")
	}
	if err := checkSysctl(&Config{Net: runopts.NetMode{Kind: runopts.ModeBridge}}, "net.core.somaxconn"); err != nil {
		t.Errorf("bridge: %v", err)
	}
}

func TestCheckRuntime(t *testing.T) {
	rootless := &Engine{cfg: EngineConfig{Rootless: true}}
	cfg := &Config{Runtime: runopts.Runtime{Resources: runopts.Resources{Memory: 64 << 20}}}
	if err := rootless.checkRuntime(cfg); err == nil || !strings.Contains(err.Error(), "need cgroup delegation") {
		t.Errorf("rootless limits: %v", err)
	}
	root := &Engine{}
	if err := root.checkRuntime(cfg); err != nil {
		t.Errorf("rootful limits: %v", err)
	}
	if err := root.checkRuntime(&Config{Runtime: runopts.Runtime{Devices: []runopts.Device{{Source: "/nonexistent", Destination: "/dev/x"}}}}); err == nil || err.Error() != "stat /nonexistent: no such file or directory" {
		t.Errorf("missing device: %v", err)
	}
	regular := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := root.checkRuntime(&Config{Runtime: runopts.Runtime{Devices: []runopts.Device{{Source: regular, Destination: "/dev/x"}}}}); err == nil || !strings.Contains(err.Error(), "not a device node") {
		t.Errorf("regular file as device: %v", err)
	}
	if err := root.checkRuntime(&Config{Runtime: runopts.Runtime{Init: true, InitPath: "/nonexistent/init"}}); err == nil || !strings.HasPrefix(err.Error(), "container-init binary not found on the host: stat /nonexistent/init") {
		t.Errorf("missing init: %v", err)
	}
}
