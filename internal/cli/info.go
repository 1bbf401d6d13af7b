package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/compat/pasta"
	"github.com/berthnet/berth/internal/compat/slirp4netns"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/rootless"
)

// Info is what `berth info` reports: the network part of `podman info`,
// under the same template paths ({{.Host.NetworkBackend}}).
type Info struct {
	Host    InfoHost    `json:"host"`
	Plugins InfoPlugins `json:"plugins"`
	Store   InfoStore   `json:"store"`
	Version InfoVersion `json:"version"`
}

// InfoHost describes the machine and the network backend.
type InfoHost struct {
	Arch               string             `json:"arch"`
	OS                 string             `json:"os"`
	NetworkBackend     string             `json:"networkBackend"`
	NetworkBackendInfo NetworkBackendInfo `json:"networkBackendInfo"`
	Security           InfoSecurity       `json:"security"`
	// Slirp4NetNS is the user-mode network rootless containers get
	// (podman info's host.slirp4netns).
	Slirp4NetNS InfoSlirp `json:"slirp4netns"`
	// Pasta is berth's pasta (podman info's host.pasta), and
	// RootlessNetworkCmd the one rootless containers get by default.
	Pasta              InfoSlirp `json:"pasta"`
	RootlessNetworkCmd string    `json:"rootlessNetworkCmd"`
	// IDMappings are the user namespace's maps (rootless only).
	IDMappings *InfoIDMappings `json:"idMappings,omitempty"`
}

// InfoSlirp names the user-mode network program.
type InfoSlirp struct {
	Executable string `json:"executable"`
	Package    string `json:"package"`
	Version    string `json:"version"`
}

// InfoIDMappings are a user namespace's UID and GID maps.
type InfoIDMappings struct {
	UIDMap []InfoIDMap `json:"uidmap"`
	GIDMap []InfoIDMap `json:"gidmap"`
}

// InfoIDMap is one line of a uid_map or gid_map.
type InfoIDMap struct {
	ContainerID int `json:"container_id"`
	HostID      int `json:"host_id"`
	Size        int `json:"size"`
}

// idMappings reads the calling process's user namespace maps (nil when
// not in berth's rootless namespace).
func idMappings() *InfoIDMappings {
	if !rootless.Inside() {
		return nil
	}
	read := func(p string) []InfoIDMap {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		m, err := rootless.ParseIDMap(string(b))
		if err != nil {
			return nil
		}
		var out []InfoIDMap
		for _, t := range m {
			out = append(out, InfoIDMap{ContainerID: t[0], HostID: t[1], Size: t[2]})
		}
		return out
	}
	return &InfoIDMappings{UIDMap: read("/proc/self/uid_map"), GIDMap: read("/proc/self/gid_map")}
}

// NetworkBackendInfo names the backend and its DNS server.
type NetworkBackendInfo struct {
	Backend string  `json:"backend"`
	Version string  `json:"version"`
	Path    string  `json:"path"`
	DNS     InfoDNS `json:"dns"`
}

// InfoDNS is the DNS server berth starts for networks with DNS.
type InfoDNS struct {
	Version string `json:"version"`
	Path    string `json:"path"`
}

// InfoSecurity tells whether berth runs rootless.
type InfoSecurity struct {
	Rootless bool `json:"rootless"`
}

// InfoPlugins lists the network drivers.
type InfoPlugins struct {
	Network []string `json:"network"`
}

// InfoStore names the directories and settings in use.
type InfoStore struct {
	NetworkConfigDir string   `json:"networkConfigDir"`
	NetworkRunDir    string   `json:"networkRunDir"`
	ConfigFiles      []string `json:"configFiles"`
	DefaultNetwork   string   `json:"defaultNetwork"`
	FirewallDriver   string   `json:"firewallDriver"`
	DNSBindPort      uint16   `json:"dnsBindPort"`
}

// InfoVersion is berth's version.
type InfoVersion struct {
	Version     string `json:"Version"`
	NetavarkAPI string `json:"NetavarkAPI"`
	GoVersion   string `json:"GoVersion"`
	GitCommit   string `json:"GitCommit"`
	BuiltTime   string `json:"BuiltTime"`
	OsArch      string `json:"OsArch"`
}

func infoCmd(env Env, g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "info [options]",
		Short: "Display berth's network backend information",
		Long:  "Display the network backend, drivers, directories and settings in use, as YAML, JSON (--format json) or a Go template (--format '{{.Host.NetworkBackend}}').",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			fw := w.conf.Network.FirewallDriver
			if fw == "" {
				fw = "nftables"
			}
			info := Info{
				Host: InfoHost{
					Arch: runtime.GOARCH, OS: runtime.GOOS, NetworkBackend: "netavark",
					NetworkBackendInfo: NetworkBackendInfo{
						Backend: "netavark", Version: "berth " + buildinfo.Version + " (netavark " + buildinfo.NetavarkVersion + " interface)",
						Path: env.Executable, DNS: InfoDNS{Version: "berth " + buildinfo.Version, Path: w.aardvarkBinary()},
					},
					Security: InfoSecurity{Rootless: env.Rootless},
					Slirp4NetNS: InfoSlirp{
						Executable: w.slirp().Path, Package: "berth " + buildinfo.Version,
						Version: "slirp4netns version " + slirp4netns.Version + " (berth " + buildinfo.Version + ", gVisor netstack)",
					},
					Pasta: InfoSlirp{
						Executable: w.pasta().Path, Package: "berth " + buildinfo.Version,
						Version: "pasta " + pasta.PastaVersion + " (berth " + buildinfo.Version + ", gVisor netstack)",
					},
					RootlessNetworkCmd: w.conf.Network.DefaultRootlessNetworkCmd,
					IDMappings:         idMappings(),
				},
				Plugins: InfoPlugins{Network: []string{"bridge", "macvlan", "ipvlan"}},
				Store: InfoStore{
					NetworkConfigDir: w.store.Dir(), NetworkRunDir: w.runDir, ConfigFiles: w.conf.Files,
					DefaultNetwork: w.conf.Network.DefaultNetwork, FirewallDriver: fw, DNSBindPort: w.conf.Network.DNSBindPort,
				},
				Version: InfoVersion{
					Version: buildinfo.Version, NetavarkAPI: buildinfo.NetavarkVersion, GoVersion: runtime.Version(),
					GitCommit: buildinfo.Commit, BuiltTime: buildinfo.BuildTime, OsArch: runtime.GOOS + "/" + runtime.GOARCH,
				},
			}
			if info.Store.ConfigFiles == nil {
				info.Store.ConfigFiles = []string{}
			}
			switch {
			case isJSON(format):
				b, err := json.MarshalIndent(info, "", "     ")
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, string(b))
			case format != "":
				rpt, err := parseReport("info", format, nil)
				if err != nil {
					return err
				}
				return rpt.render(env.Stdout, []Info{info}, false)
			default:
				b, _ := json.Marshal(info)
				var v any
				_ = json.Unmarshal(b, &v)
				bw := bufio.NewWriter(env.Stdout)
				writeYAML(bw, v, 0)
				return bw.Flush()
			}
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	c.Flags().StringVarP(&format, "format", "f", "", "json, or a Go template such as '{{.Host.NetworkBackend}}'")
	return c
}

// writeYAML prints decoded JSON as block YAML (maps sorted by key).
func writeYAML(w io.Writer, v any, indent int) {
	pad := strings.Repeat("  ", indent)
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch c := x[k].(type) {
			case map[string]any:
				fmt.Fprintf(w, "%s%s:\n", pad, k)
				writeYAML(w, c, indent+1)
			case []any:
				if len(c) == 0 {
					fmt.Fprintf(w, "%s%s: []\n", pad, k)
					continue
				}
				fmt.Fprintf(w, "%s%s:\n", pad, k)
				for _, e := range c {
					fmt.Fprintf(w, "%s- %s\n", pad, scalar(e))
				}
			default:
				fmt.Fprintf(w, "%s%s: %s\n", pad, k, scalar(c))
			}
		}
	}
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" || strings.ContainsAny(x, ":#{}[]&*!|>'\"%@`") || x != strings.TrimSpace(x) {
			b, _ := json.Marshal(x)
			return string(b)
		}
		return x
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func systemCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "system",
		Short: "Manage berth",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("missing command '%s COMMAND'", cmd.CommandPath())
		},
	}
	var force bool
	reset := &cobra.Command{
		Use:   "reset [options]",
		Short: "Remove berth's networks, state and rules",
		Long: `Stop and remove every container (with its logs and root filesystem) and
the engine's storage and runtime directories (--root, --runroot), detach
every other registered container from its networks (removing their
interfaces, firewall rules and DNS entries), forget the containers, and
remove every network and its address records. Rootful, an exported default
network file is kept, as Podman keeps it; rootless the whole network
directory goes.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(env.Stdout, "WARNING! This will remove:\n        - all containers, their logs and root filesystems\n        - all networks and their address records\n        - all containers registered with berth (their namespaces are detached, not deleted)\nAre you sure you want to continue? [y/N] ")
				ans, err := bufio.NewReader(env.Stdin).ReadString('\n')
				if err != nil && ans == "" {
					// No answer (EOF): Podman's exit code 1, nothing reset.
					fmt.Fprintln(env.Stdout)
					return &exitError{code: 1, err: fmt.Errorf("no answer: %w", err)}
				}
				if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
					return nil
				}
			}
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			return w.reset(cmd)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	reset.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.AddCommand(reset, serviceCmd(env, g), eventsCmd(env, g))
	return c
}

// reset removes every container, pod, image and network berth made, and
// its storage and runtime state; it carries on past errors and returns
// them all.
func (w *world) reset(cmd *cobra.Command) error {
	var errs []error
	// Containers first: they stop, leave their networks and are removed;
	// then the engine's storage (containers, images) and runtime state.
	if e, err := w.engine(); err == nil {
		errs = w.resetEngine(cmd, e)
	}
	// Records of the CLI's former container database.
	legacy := filepath.Join(w.runDir, "berth", "containers.db")
	for _, p := range []string{legacy, legacy + engine.MigratedSuffix} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove container records: %w", err))
		}
	}
	return errors.Join(append(errs, w.resetNetworks()...)...)
}

// resetEngine removes pods and containers (detaching namespaces
// registered with network connect --netns), resets the image store and,
// when all that went well, removes the storage and runtime directories.
func (w *world) resetEngine(cmd *cobra.Command, e *engine.Engine) []error {
	var errs []error
	pods, err := e.Pods()
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range pods {
		if _, err := e.RemovePod(p.ID, true); err != nil && !errors.Is(err, engine.ErrNoSuchPod) {
			errs = append(errs, fmt.Errorf("remove pod %s: %w", p.Name, err))
		}
	}
	ecs, err := e.List()
	if err != nil {
		errs = append(errs, err)
	}
	for _, c := range ecs {
		if _, err := e.Remove(c.Config.ID, true); err != nil && !errors.Is(err, engine.ErrNoSuchContainer) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.Config.Name, err))
		}
	}
	// Namespaces registered with network connect --netns leave their
	// networks too.
	errs = append(errs, e.DetachRegistered(cmd.Context())...)
	if _, err := os.Stat(filepath.Join(w.root, "images")); err == nil {
		// Image store mounts go before its directory does.
		if s, err := image.Open(filepath.Join(w.root, "images")); err == nil {
			if err := s.Reset(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 && w.rootlessBridges() {
		errs = append(errs, w.resetRootless()...)
	}
	if len(errs) == 0 {
		for _, d := range []string{w.root, w.runRoot} {
			if err := removeTree(d); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
			}
		}
	}
	return errs
}

// resetNetworks, under the network store's lock, forgets every
// network's addresses and removes every network except the default
// (whose file goes too when rootless), then resets the rootless netns.
func (w *world) resetNetworks() []error {
	nets, err := w.store.List()
	if err != nil {
		return []error{err}
	}
	unlock, err := w.store.Lock()
	if err != nil {
		return []error{err}
	}
	defer unlock()
	var errs []error
	names := make([]string, 0, len(nets))
	for _, n := range nets {
		names = append(names, n.Name)
	}
	if err := w.forgetAddresses(names...); err != nil {
		errs = append(errs, err)
	}
	for _, n := range nets {
		if w.store.IsDefault(n) {
			if w.env.Rootless {
				if err := os.Remove(w.store.Dir() + "/" + n.Name + ".json"); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			continue
		}
		if err := w.store.Remove(n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if w.rootlessBridges() {
		errs = append(errs, w.resetRootless()...)
	}
	return errs
}

// resetRootless removes the rootless netns (stopping its uplink) and stops
// the pause process: the next command starts from scratch.
func (w *world) resetRootless() []error {
	var errs []error
	if err := w.rootlessNetNS().Remove(); err != nil {
		errs = append(errs, err)
	}
	if err := rootless.StopPause(filepath.Join(rootlessRuntimeDir(w.env.getenv, w.env.UID), "berth")); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// removeTree removes dir and everything in it; when dir itself is a mount
// point (a tmpfs over /run/berth, a volume for /var/lib/berth) it cannot
// go, so its contents do and the empty directory stays.
func removeTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || !errors.Is(err, syscall.EBUSY) {
		return err
	}
	ents, rerr := os.ReadDir(dir)
	if rerr != nil {
		return err
	}
	var errs []error
	for _, ent := range ents {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, ent.Name())))
	}
	return errors.Join(errs...)
}
