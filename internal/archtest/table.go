package archtest

// Berth is the layering of this module: every package and its layer, and
// the imports that still break the rules until the refactors that remove
// them land. A new package needs a line in Layers; a pending entry goes
// as soon as its import does (the check fails on entries that no longer
// occur).
var Berth = Rules{
	Module:    "github.com/berthnet/berth",
	TableFile: "internal/archtest/table.go",
	KernelLibs: []string{
		"github.com/vishvananda/netlink",
		"github.com/vishvananda/netns",
		"github.com/google/nftables",
		"github.com/mdlayher/netlink",
		"github.com/godbus/dbus/v5",
	},
	Layers: map[string]Layer{
		// Commands: thin mains.
		"cmd/aardvark-dns":   Cmd,
		"cmd/berth":          Cmd,
		"cmd/berth-cni":      Cmd,
		"cmd/berth-cni-dhcp": Cmd,
		"cmd/berth-overlay":  Cmd,
		"cmd/netavark":       Cmd,
		"cmd/pasta":          Cmd,
		"cmd/slirp4netns":    Cmd,

		// Front-ends: translate their input into the core's model.
		"internal/cli":                      FrontEnd,
		"internal/compat/aardvark":          FrontEnd,
		"internal/compat/cni":               FrontEnd,
		"internal/compat/cni/delegate":      FrontEnd,
		"internal/compat/netavark":          FrontEnd,
		"internal/compat/netavark/withdhcp": FrontEnd,
		"internal/compat/pasta":             FrontEnd,
		"internal/compat/slirp4netns":       FrontEnd,
		"internal/dockerapi":                FrontEnd,
		"internal/overlay":                  FrontEnd,

		// Core: attaching containers, their addresses, names and lives.
		"berthnet":               Core,
		"internal/build":         Core,
		"internal/core":          Core,
		"internal/dhcp":          Core,
		"internal/dhcpproxy":     Core,
		"internal/dns":           Core,
		"internal/doctor/survey": Core,
		"internal/embeddns":      Core,
		"internal/engine":        Core,
		"internal/image":         Core,
		"internal/ipam":          Core,
		"internal/monitor":       Core,
		"internal/overlay/agent": Core,
		"internal/rootless":      Core,
		"internal/shortlived":    Core,
		"internal/usernet":       Core,

		// Kernel adapters: the only packages that talk netlink.
		"internal/doctor/probe":       Kernel,
		"internal/firewall/beside":    Kernel,
		"internal/firewall/firewalld": Kernel,
		"internal/firewall/iptables":  Kernel,
		"internal/firewall/nftables":  Kernel,
		"internal/firewall/none":      Kernel,
		"internal/link":               Kernel,
		"internal/netns":              Kernel,
		"internal/reaper":             Kernel,
		"internal/sysctl":             Kernel,
		"internal/vxlan":              Kernel,

		// Model: types, formats and plans, free of the kernel.
		"internal/aardvarkconf":    Model,
		"internal/buildinfo":       Model,
		"internal/containersconf":  Model,
		"internal/ctrlog":          Model,
		"internal/doctor":          Model,
		"internal/events":          Model,
		"internal/dhcpproxy/proto": Model,
		"internal/firewall":        Model,
		"internal/hostsfile":       Model,
		"internal/image/change":    Model,
		"internal/image/ref":       Model,
		"internal/netconf":         Model,
		"internal/netstore":        Model,
		"internal/network":         Model,
		"internal/overlay/lease":   Model,
		"internal/resolvconf":      Model,
		"internal/rollback":        Model,
		"internal/safefile":        Model,
		"internal/boltfile":        Model,
		"internal/sdactivation":    Model,
		"internal/runopts":         Model,
		"internal/runspec":         Model,

		// Test support: imported only by tests.
		"bench/cnibench":                   TestSupport,
		"internal/archtest":                TestSupport,
		"internal/dhcpproxy/dhcpproxytest": TestSupport,
		"internal/image/imagetest":         TestSupport,
		"internal/nettest":                 TestSupport,
		"test/reliability":                 TestSupport,
	},
	Pending: []Pending{},
}
