package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/runopts"
)

// volumeInspect is Podman 4.3's volume inspect (and volume ls --format
// json) object.
type volumeInspect struct {
	Name        string            `json:"Name"`
	Driver      string            `json:"Driver"`
	Mountpoint  string            `json:"Mountpoint"`
	CreatedAt   time.Time         `json:"CreatedAt"`
	Labels      map[string]string `json:"Labels"`
	Scope       string            `json:"Scope"`
	Options     map[string]string `json:"Options"`
	Anonymous   bool              `json:"Anonymous,omitempty"`
	MountCount  uint              `json:"MountCount"`
	NeedsCopyUp bool              `json:"NeedsCopyUp,omitempty"`
	NeedsChown  bool              `json:"NeedsChown,omitempty"`
}

func inspectVolume(e *engine.Engine, v *engine.Volume) volumeInspect {
	labels := v.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return volumeInspect{Name: v.Name, Driver: v.Driver, Mountpoint: e.VolumePath(v.Name), CreatedAt: v.Created,
		Labels: labels, Scope: "local", Options: map[string]string{}, Anonymous: v.Anonymous,
		NeedsCopyUp: v.NeedsCopyUp, NeedsChown: v.NeedsChown}
}

// inspectMount is one entry of a container's inspect Mounts, as Podman
// shows bind mounts and volumes (tmpfs mounts are not listed).
type inspectMount struct {
	Type        string   `json:"Type"`
	Name        string   `json:"Name,omitempty"`
	Source      string   `json:"Source"`
	Destination string   `json:"Destination"`
	Driver      string   `json:"Driver"`
	Mode        string   `json:"Mode"`
	Options     []string `json:"Options"`
	RW          bool     `json:"RW"`
	Propagation string   `json:"Propagation"`
}

// inspectMounts lists the container's bind mounts and volumes; the
// options are those mounted with, ro/rw, the propagation and z/Z apart.
func inspectMounts(e *engine.Engine, c *engine.Container) []inspectMount {
	out := []inspectMount{}
	for _, m := range c.Config.Mounts {
		if m.Type == runopts.MountTmpfs {
			continue
		}
		im := inspectMount{Type: m.Type, Source: m.Source, Destination: m.Destination, RW: true, Options: []string{}}
		if m.Type == runopts.MountVolume {
			im.Name, im.Source, im.Driver = m.Source, e.VolumePath(m.Source), engine.LocalDriver
		}
		for _, o := range m.Options {
			if o == "z" || o == "Z" {
				im.Mode = o
			}
		}
		for _, o := range engine.MountOptions(m) {
			switch o {
			case "ro":
				im.RW = false
			case "rw":
			case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
				im.Propagation = o
			default:
				im.Options = append(im.Options, o)
			}
		}
		out = append(out, im)
	}
	// Podman lists volumes, then bind mounts, each by destination.
	sort.SliceStable(out, func(i, j int) bool {
		if vi, vj := out[i].Type == runopts.MountVolume, out[j].Type == runopts.MountVolume; vi != vj {
			return vi
		}
		return out[i].Destination < out[j].Destination
	})
	return out
}

// volumeErr maps volume errors to Podman's exit codes: 1 for a missing
// volume, 2 for one in use.
func volumeErr(err error) error {
	switch {
	case errors.Is(err, engine.ErrNoSuchVolume):
		return &exitError{code: 1, err: err}
	case errors.Is(err, engine.ErrVolumeInUse):
		return &exitError{code: 2, err: err}
	}
	return err
}

func volumeCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "volume",
		Short: "Manage volumes",
		Long:  "Named volumes: directories under the storage root that containers mount with -v NAME:/path or --mount type=volume and that outlive them.",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(volumeCreateCmd(env, g), volumeLsCmd(env, g), volumeInspectCmd(env, g),
		volumeRmCmd(env, g), volumePruneCmd(env, g), volumeExistsCmd(env, g))
	return c
}

func volumeCreateCmd(env Env, g *globals) *cobra.Command {
	var labels, opts []string
	var driver string
	c := &cobra.Command{
		Use:   "create [options] [NAME]",
		Short: "Create a volume",
		Long:  "Create a volume (with a random name when none is given) and print its name. Only the local driver without options is supported.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver != engine.LocalDriver {
				return fmt.Errorf("volume driver %q: berth supports the local driver only", driver)
			}
			if len(opts) > 0 {
				return fmt.Errorf("--opt %q: berth does not support volume options (type, device, o, size, ...)", opts[0])
			}
			o := engine.VolumeOptions{}
			if len(args) == 1 {
				o.Name = args[0]
			}
			var err error
			if o.Labels, err = parseLabels(labels); err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			v, err := e.CreateVolume(o)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, v.Name)
			return nil
		},
	}
	c.Flags().StringArrayVarP(&labels, "label", "l", nil, "set a label KEY=VALUE")
	c.Flags().StringArrayVarP(&opts, "opt", "o", nil, "driver option (none is supported: refused)")
	c.Flags().StringVarP(&driver, "driver", "d", engine.LocalDriver, "volume driver (local only)")
	return c
}

// volumeRow is one line of volume ls; its fields are the --format names.
type volumeRow struct {
	volumeInspect
}

// volumeFilter matches volumes against ls's --filter values.
type volumeFilter func(v *engine.Volume, used bool) bool

func parseVolumeFilters(fs []string) ([]volumeFilter, error) {
	var out []volumeFilter
	for _, f := range fs {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("--filter %q: want KEY=VALUE", f)
		}
		switch k {
		case "name":
			re, err := regexp.Compile(val)
			if err != nil {
				return nil, fmt.Errorf("--filter %q: %w", f, err)
			}
			out = append(out, func(v *engine.Volume, _ bool) bool { return re.MatchString(v.Name) })
		case "label":
			lk, lv, hasV := strings.Cut(val, "=")
			out = append(out, func(v *engine.Volume, _ bool) bool {
				got, ok := v.Labels[lk]
				return ok && (!hasV || got == lv)
			})
		case "driver":
			out = append(out, func(v *engine.Volume, _ bool) bool { return v.Driver == val })
		case "dangling":
			want := val == "true" || val == "1"
			if !want && val != "false" && val != "0" {
				return nil, fmt.Errorf("--filter %q: dangling takes true or false", f)
			}
			out = append(out, func(_ *engine.Volume, used bool) bool { return used != want })
		default:
			return nil, fmt.Errorf("%q is an invalid volume filter (berth supports name, label, driver and dangling)", k)
		}
	}
	return out, nil
}

func volumeLsCmd(env Env, g *globals) *cobra.Command {
	var quiet, noHeading bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     "ls [options]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs, err := parseVolumeFilters(filters)
			if err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			vols, err := e.Volumes()
			if err != nil {
				return err
			}
			rows := []volumeRow{}
		next:
			for _, v := range vols {
				users, err := e.VolumeUsers(v.Name)
				if err != nil {
					return err
				}
				for _, f := range fs {
					if !f(v, len(users) > 0) {
						continue next
					}
				}
				rows = append(rows, volumeRow{inspectVolume(e, v)})
			}
			if isJSON(format) {
				b, err := json.MarshalIndent(rows, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
				return err
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(env.Stdout, r.Name)
				}
				return nil
			}
			return renderList(cmd, env.Stdout, "volume ls", format, "table {{.Driver}} {{.Name}}",
				map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE", "CreatedAt": "CREATED AT", "Labels": "LABELS"}, rows, noHeading)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	c.Flags().BoolVarP(&noHeading, "noheading", "n", false, "do not print the header")
	c.Flags().StringVar(&format, "format", "", "Go template or json")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter: name=REGEX, label=KEY[=VALUE], driver=local, dangling=true|false")
	return c
}

func volumeInspectCmd(env Env, g *globals) *cobra.Command {
	var format string
	var all bool
	c := &cobra.Command{
		Use:   "inspect [options] VOLUME...",
		Short: "Show volumes' details",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return errors.New("provide one or more volume names or use --all")
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			var vols []*engine.Volume
			if all {
				if vols, err = e.Volumes(); err != nil {
					return err
				}
			}
			var errs []error
			for _, a := range args {
				v, err := e.GetVolume(a)
				if err != nil {
					errs = append(errs, fmt.Errorf("inspecting object: %w", err))
					continue
				}
				vols = append(vols, v)
			}
			out := []volumeInspect{}
			for _, v := range vols {
				out = append(out, inspectVolume(e, v))
			}
			if format != "" && !isJSON(format) {
				r, err := parseReport("volume inspect", strings.TrimPrefix(format, "table "), nil)
				if err == nil {
					err = r.render(env.Stdout, out, false)
				}
				if err != nil {
					return err
				}
			} else if err := inspectJSON(env.Stdout, out); err != nil {
				return err
			}
			return lastError(env, errs)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template or json")
	c.Flags().BoolVarP(&all, "all", "a", false, "inspect every volume")
	return c
}

func volumeRmCmd(env Env, g *globals) *cobra.Command {
	var force, all bool
	c := &cobra.Command{
		Use:     "rm [options] VOLUME...",
		Aliases: []string{"remove"},
		Short:   "Remove volumes and their data",
		Long:    "Remove volumes and their data. A volume that containers use is refused; -f removes those containers first.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 0) == !all {
				return errors.New("choose either one or more volumes or all")
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if all {
				vols, err := e.Volumes()
				if err != nil {
					return err
				}
				for _, v := range vols {
					args = append(args, v.Name)
				}
			}
			return forEach(env, args, func(a string) (string, error) {
				v, err := e.GetVolume(a)
				if err == nil {
					err = e.RemoveVolume(v.Name, force)
				}
				if err != nil {
					return "", volumeErr(err)
				}
				return v.Name, nil
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove the containers that use the volumes first")
	c.Flags().BoolVarP(&all, "all", "a", false, "remove every volume")
	return c
}

func volumePruneCmd(env Env, g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "prune [options]",
		Short: "Remove every volume no container uses",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(env.Stdout, "WARNING! This will remove all volumes not used by at least one container. The following volumes will be removed:\n")
				_, e, err := openEngine(env, g)
				if err != nil {
					return err
				}
				vols, err := e.Volumes()
				if err != nil {
					return err
				}
				for _, v := range vols {
					if users, err := e.VolumeUsers(v.Name); err == nil && len(users) == 0 {
						fmt.Fprintln(env.Stdout, v.Name)
					}
				}
				fmt.Fprint(env.Stdout, "Are you sure you want to continue? [y/N] ")
				answer, _ := bufio.NewReader(env.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			removed, err := e.PruneVolumes()
			for _, n := range removed {
				fmt.Fprintln(env.Stdout, n)
			}
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return c
}

func volumeExistsCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "exists VOLUME",
		Short: "Exit 0 when the volume exists, 1 when it does not",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			vols, err := e.Volumes()
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(vols, func(v *engine.Volume) bool { return v.Name == args[0] }) {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}
