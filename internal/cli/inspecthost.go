package cli

// The rest of inspect's HostConfig: the keys Podman 4.3 prints for
// settings berth has no flag for carry Podman's values for a container
// without them; the capabilities are computed as Podman does.

import (
	"slices"
	"strings"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// inspectHostRest is the part of HostConfig beside the network and run
// flags' keys (embedded in inspectHost).
type inspectHostRest struct {
	Binds                []string          `json:"Binds"`
	CgroupManager        string            `json:"CgroupManager"`
	CgroupMode           string            `json:"CgroupMode"`
	ContainerIDFile      string            `json:"ContainerIDFile"`
	LogConfig            inspectLogConfig  `json:"LogConfig"`
	VolumeDriver         string            `json:"VolumeDriver"`
	VolumesFrom          []string          `json:"VolumesFrom"`
	IpcMode              string            `json:"IpcMode"`
	Cgroup               string            `json:"Cgroup"`
	Cgroups              string            `json:"Cgroups"`
	Links                []string          `json:"Links"`
	OomScoreAdj          int               `json:"OomScoreAdj"`
	PidMode              string            `json:"PidMode"`
	PublishAllPorts      bool              `json:"PublishAllPorts"`
	ReadonlyRootfs       bool              `json:"ReadonlyRootfs"`
	Tmpfs                map[string]string `json:"Tmpfs"`
	UTSMode              string            `json:"UTSMode"`
	UsernsMode           string            `json:"UsernsMode"`
	ShmSize              int64             `json:"ShmSize"`
	Runtime              string            `json:"Runtime"`
	ConsoleSize          [2]uint           `json:"ConsoleSize"`
	Isolation            string            `json:"Isolation"`
	CgroupParent         string            `json:"CgroupParent"`
	BlkioWeight          uint16            `json:"BlkioWeight"`
	BlkioWeightDevice    []any             `json:"BlkioWeightDevice"`
	BlkioDeviceReadBps   []any             `json:"BlkioDeviceReadBps"`
	BlkioDeviceWriteBps  []any             `json:"BlkioDeviceWriteBps"`
	BlkioDeviceReadIOps  []any             `json:"BlkioDeviceReadIOps"`
	BlkioDeviceWriteIOps []any             `json:"BlkioDeviceWriteIOps"`
	CpuRealtimePeriod    uint64            `json:"CpuRealtimePeriod"`
	CpuRealtimeRuntime   int64             `json:"CpuRealtimeRuntime"`
	CpusetCpus           string            `json:"CpusetCpus"`
	CpusetMems           string            `json:"CpusetMems"`
	DiskQuota            uint64            `json:"DiskQuota"`
	KernelMemory         int64             `json:"KernelMemory"`
	MemoryReservation    int64             `json:"MemoryReservation"`
	MemorySwappiness     int64             `json:"MemorySwappiness"`
	OomKillDisable       bool              `json:"OomKillDisable"`
	CpuCount             uint64            `json:"CpuCount"`
	CpuPercent           uint64            `json:"CpuPercent"`
	IOMaximumIOps        uint64            `json:"IOMaximumIOps"`
	IOMaximumBandwidth   uint64            `json:"IOMaximumBandwidth"`
	CgroupConf           map[string]string `json:"CgroupConf"`
}

// inspectLogConfig is HostConfig.LogConfig.
type inspectLogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config"`
	Path   string            `json:"Path"`
	Tag    string            `json:"Tag"`
	Size   string            `json:"Size"`
}

// shmSize is the size of berth's /dev/shm (runspec's size=65536k).
const shmSize = 65536 << 10

// hostRest builds the rest of c's HostConfig.
func hostRest(c *engine.Container, logPath string) inspectHostRest {
	cf := c.Config
	r := inspectHostRest{
		Binds: []string{}, Tmpfs: map[string]string{},
		CgroupManager: "cgroupfs", CgroupMode: "host", Cgroups: "default",
		LogConfig: inspectLogConfig{Type: "k8s-file", Path: logPath, Size: "0B"},
		IpcMode:   "shareable", PidMode: "private", UTSMode: "private",
		ReadonlyRootfs: cf.ReadOnly, ShmSize: shmSize, Runtime: "oci",
	}
	if cf.Pod != "" && !cf.Infra && cf.Net.Kind == runopts.ModeContainer {
		// A pod member shares its infra container's IPC and UTS.
		r.IpcMode, r.UTSMode = "container:"+cf.Net.Target, "container:"+cf.Net.Target
	}
	for _, m := range cf.Mounts {
		opts := strings.Join(m.Options, ",")
		if !m.ReadOnly() {
			opts = strings.TrimPrefix(opts+",rw", ",")
		}
		switch m.Type {
		case runopts.MountTmpfs:
			r.Tmpfs[m.Destination] = strings.Join(m.Options, ",")
		case runopts.MountVolume:
			r.Binds = append(r.Binds, m.Source+":"+m.Destination+":"+opts+",rprivate,nosuid,nodev,rbind")
		default:
			r.Binds = append(r.Binds, m.Source+":"+m.Destination+":"+opts+",rprivate,rbind")
		}
	}
	return r
}

// dockerDefaultCaps is the default set Podman compares a container's
// bounding set with for HostConfig's CapAdd and CapDrop.
var dockerDefaultCaps = slices.Sorted(slices.Values(append(slices.Clone(runspec.DefaultCapabilities), "CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW")))

// capsOf returns inspect's EffectiveCaps, BoundingCaps, and HostConfig's
// CapAdd and CapDrop as Podman computes them: the bounding set against
// Docker's default set.
func capsOf(cf engine.Config) (effective, bounding, add, drop []string) {
	effective, bounding = engine.Capabilities(cf)
	add, drop = []string{}, []string{}
	for _, c := range dockerDefaultCaps {
		if !slices.Contains(bounding, c) {
			drop = append(drop, c)
		}
	}
	for _, c := range bounding {
		if !slices.Contains(dockerDefaultCaps, c) {
			add = append(add, c)
		}
	}
	return effective, bounding, add, drop
}
