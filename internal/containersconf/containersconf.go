// Package containersconf reads the settings berth honours from
// containers.conf (the TOML file Podman and containers/common read): the
// [network] table and the helper directories of [engine]. Files are found and
// merged as containers/common does: $CONTAINERS_CONF alone when it is set,
// otherwise /usr/share/containers/containers.conf, then
// /etc/containers/containers.conf and its .d directory, then (rootless) the
// user's ~/.config/containers/containers.conf and its .d directory; a key in a
// later file overrides the same key in an earlier one. Unknown keys and
// tables are ignored, as Podman ignores them.
package containersconf

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/berthnet/berth/internal/safefile"
)

// Pool is one entry of default_subnet_pools.
type Pool struct {
	Base netip.Prefix `toml:"base"`
	Size int          `toml:"size"`
}

// Network is the [network] table.
type Network struct {
	NetworkBackend     string   `toml:"network_backend"`
	DefaultNetwork     string   `toml:"default_network"`
	DefaultSubnet      string   `toml:"default_subnet"`
	DefaultSubnetPools []Pool   `toml:"default_subnet_pools"`
	NetworkConfigDir   string   `toml:"network_config_dir"`
	FirewallDriver     string   `toml:"firewall_driver"`
	DNSBindPort        uint16   `toml:"dns_bind_port"`
	CNIPluginDirs      []string `toml:"cni_plugin_dirs"`
	// DefaultRootlessNetworkCmd is the user-mode network of rootless
	// containers and of the rootless netns's uplink: pasta (the
	// default, as Podman 5) or slirp4netns.
	DefaultRootlessNetworkCmd string `toml:"default_rootless_network_cmd"`
	// PastaOptions are pasta(1) arguments given before a container's own.
	PastaOptions []string `toml:"pasta_options"`
}

// Engine is the part of the [engine] table berth reads.
type Engine struct {
	HelperBinariesDir []string `toml:"helper_binaries_dir"`
}

// Config is the merged result of every containers.conf file read.
type Config struct {
	Network Network `toml:"network"`
	Engine  Engine  `toml:"engine"`
	// Files lists the files that were read, in order.
	Files []string `toml:"-"`
	// Skipped says which files were not read, and why: a FIFO, a device
	// or a file over 1 MiB is skipped, never read (callers warn).
	Skipped []error `toml:"-"`
}

// Defaults of the [network] keys (containers/common).
const (
	DefaultNetworkName = "podman"
	DefaultSubnet      = "10.88.0.0/16"
	DefaultDNSPort     = 53
	// DefaultRootlessNetworkCmd is Podman 5's default.
	DefaultRootlessNetworkCmd = "pasta"
)

// Env is what Load needs from the process environment.
type Env struct {
	// Getenv reads an environment variable (CONTAINERS_CONF, XDG_CONFIG_HOME).
	Getenv func(string) string
	// Home is the user's home directory.
	Home string
	// Rootless adds the user's own configuration files.
	Rootless bool
	// Root, when set, is prefixed to the system paths (tests).
	Root string
}

// Paths returns the files Load would read, in order, that exist.
func Paths(env Env) ([]string, error) {
	get := env.Getenv
	if get == nil {
		get = func(string) string { return "" }
	}
	if p := get("CONTAINERS_CONF"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("read CONTAINERS_CONF file: %w", err)
		}
		return []string{p}, nil
	}
	var out []string
	add := func(p string) {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			out = append(out, p)
		}
	}
	addDir := func(d string) {
		ents, err := os.ReadDir(d)
		if err != nil {
			return
		}
		var names []string
		for _, e := range ents {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".conf") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			add(filepath.Join(d, n))
		}
	}
	add(filepath.Join(env.Root, "/usr/share/containers/containers.conf"))
	add(filepath.Join(env.Root, "/etc/containers/containers.conf"))
	addDir(filepath.Join(env.Root, "/etc/containers/containers.conf.d"))
	if env.Rootless {
		base := get("XDG_CONFIG_HOME")
		if base == "" && env.Home != "" {
			base = filepath.Join(env.Home, ".config")
		}
		if base != "" {
			p := filepath.Join(base, "containers", "containers.conf")
			add(p)
			addDir(p + ".d")
		}
	}
	return out, nil
}

// Load reads and merges the containers.conf files for env and fills in the
// defaults of unset keys.
func Load(env Env) (*Config, error) {
	paths, err := Paths(env)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	for _, p := range paths {
		err := c.merge(p)
		if errors.Is(err, safefile.ErrNotRegular) || errors.Is(err, safefile.ErrTooLarge) {
			c.Skipped = append(c.Skipped, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		c.Files = append(c.Files, p)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadFile reads one file (and applies defaults), for tests and tools.
func LoadFile(path string) (*Config, error) {
	c := &Config{}
	if err := c.merge(path); err != nil {
		return nil, err
	}
	c.Files = []string{path}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// merge reads one file over c: never blocking on a FIFO or reading a
// device or a huge file (safefile).
func (c *Config) merge(path string) error {
	b, err := safefile.Read(path, safefile.DefaultLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read containers.conf file: %w", err)
	}
	if _, err := toml.Decode(string(b), c); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// Default returns the configuration with no file read.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	n := &c.Network
	if n.DefaultNetwork == "" {
		n.DefaultNetwork = DefaultNetworkName
	}
	if n.DefaultSubnet == "" {
		n.DefaultSubnet = DefaultSubnet
	}
	if n.DNSBindPort == 0 {
		n.DNSBindPort = DefaultDNSPort
	}
	if n.DefaultRootlessNetworkCmd == "" {
		n.DefaultRootlessNetworkCmd = DefaultRootlessNetworkCmd
	}
}

// Validate checks the values berth uses, naming the key and what would be
// valid.
func (c *Config) Validate() error {
	if _, err := netip.ParsePrefix(c.Network.DefaultSubnet); err != nil {
		return fmt.Errorf("containers.conf [network] default_subnet %q: not a CIDR subnet such as 10.88.0.0/16", c.Network.DefaultSubnet)
	}
	for i, p := range c.Network.DefaultSubnetPools {
		if !p.Base.IsValid() {
			return fmt.Errorf("containers.conf [network] default_subnet_pools[%d]: base is missing (want e.g. {base = \"10.89.0.0/16\", size = 24})", i)
		}
		if p.Size < p.Base.Bits() || p.Size > p.Base.Addr().BitLen() {
			return fmt.Errorf("containers.conf [network] default_subnet_pools[%d]: size %d must be between %d (the base's prefix length) and %d", i, p.Size, p.Base.Bits(), p.Base.Addr().BitLen())
		}
	}
	switch c.Network.DefaultRootlessNetworkCmd {
	case "pasta", "slirp4netns":
	default:
		return fmt.Errorf("containers.conf [network] default_rootless_network_cmd %q: want pasta or slirp4netns", c.Network.DefaultRootlessNetworkCmd)
	}
	switch strings.ToLower(c.Network.FirewallDriver) {
	case "", "nftables", "iptables", "none", "firewalld":
	default:
		return fmt.Errorf("containers.conf [network] firewall_driver %q: want nftables, iptables, firewalld or none", c.Network.FirewallDriver)
	}
	return nil
}

// UnmarshalTOML decodes a pool from its TOML inline table.
func (p *Pool) UnmarshalTOML(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("subnet pool: want a table such as {base = \"10.89.0.0/16\", size = 24}, got %v", v)
	}
	if b, ok := m["base"].(string); ok {
		pr, err := netip.ParsePrefix(b)
		if err != nil {
			return fmt.Errorf("subnet pool base %q: not a CIDR subnet", b)
		}
		p.Base = pr.Masked()
	}
	switch s := m["size"].(type) {
	case int64:
		p.Size = int(s)
	case nil:
	default:
		return fmt.Errorf("subnet pool size %v: want an integer", s)
	}
	return nil
}
