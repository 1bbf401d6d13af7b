package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
)

func podCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "pod",
		Short: "Manage pods",
		Long: `A pod is a group of containers that share one network namespace (and IPC
and UTS), owned by an infra container that runs catatonit -P. Members reach
each other on localhost; the pod's name resolves in DNS on its networks.
Network options (-p, --network, --ip, --dns, ...) belong to pod create.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("missing command '%s COMMAND'", cmd.CommandPath())
		},
	}
	c.AddCommand(podCreateCmd(env, g), podStartCmd(env, g), podStopCmd(env, g), podRmCmd(env, g), podPsCmd(env, g), podInspectCmd(env, g))
	return c
}

func podCreateCmd(env Env, g *globals) *cobra.Command {
	f := &ctrFlags{}
	var labels []string
	var infraCommand string
	c := &cobra.Command{
		Use:   "create [options] [NAME]",
		Short: "Create a pod and its infra container",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if f.name != "" && f.name != args[0] {
					return errors.New("cannot specify the pod name as --name and as an argument")
				}
				f.name = args[0]
			}
			if f.name != "" && !engine.ValidName(f.name) {
				return fmt.Errorf("--name %q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", f.name)
			}
			f.labels = labels
			o, err := f.options(cmd, env, []string{"pod"})
			if err != nil {
				return err
			}
			if err := rootlessReady(env); err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			p, err := e.CreatePod(engine.PodOptions{
				Name: f.name, Hostname: f.hostname, Labels: o.Labels,
				Net: o.Net, Ports: o.Ports, DNS: o.DNS, AddHosts: o.AddHosts, NoHosts: o.NoHosts,
				Pause: infraCommand,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, p.ID)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.name, "name", "n", "", "name of the pod")
	fl.StringVar(&f.hostname, "hostname", "", "host name of the pod (default: its name)")
	fl.StringArrayVarP(&labels, "label", "l", nil, "set a label KEY=VALUE")
	fl.StringVar(&infraCommand, "infra-command", "/usr/bin/catatonit", "static binary run as the infra process (with -P)")
	f.registerNet(fl)
	return c
}

func podStartCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start POD...",
		Short: "Start pods (infra container, then members)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			return forEach(env, args, func(a string) (string, error) {
				p, err := e.StartPod(a)
				if err != nil {
					return "", podErr(err)
				}
				return p.ID, nil
			})
		},
	}
}

func podErr(err error) error {
	if errors.Is(err, engine.ErrNoSuchPod) {
		return &exitError{code: 125, err: err}
	}
	return err
}

func podStopCmd(env Env, g *globals) *cobra.Command {
	var timeout uint
	c := &cobra.Command{
		Use:   "stop [options] POD...",
		Short: "Stop pods (members, then the infra container)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			var t *uint
			if cmd.Flags().Changed("time") {
				t = &timeout
			}
			return forEach(env, args, func(a string) (string, error) {
				p, err := e.StopPod(a, t)
				if err != nil {
					return "", podErr(err)
				}
				return p.ID, nil
			})
		},
	}
	c.Flags().UintVarP(&timeout, "time", "t", 10, "seconds to wait before killing the containers")
	return c
}

func podRmCmd(env Env, g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm [options] POD...",
		Short: "Remove pods with their containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			return forEach(env, args, func(a string) (string, error) {
				p, err := e.RemovePod(a, force)
				switch {
				case err == nil:
					return p.ID, nil
				case force && errors.Is(err, engine.ErrNoSuchPod):
					return "", errSkip // as Podman: -f of a missing pod is no error
				case errors.Is(err, engine.ErrNoSuchPod):
					return "", &exitError{code: 1, err: err}
				case errors.Is(err, engine.ErrRunning):
					return "", &exitError{code: 2, err: err}
				}
				return "", err
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "stop and remove running containers too")
	return c
}

// podRow is one line of pod ps, with Podman's template fields: Created
// (and CreatedHuman) how long ago, the members' names, IDs and states
// comma-separated.
type podRow struct {
	ID, Name, Status, Created, CreatedHuman, InfraID, Networks, Cgroup string
	ContainerNames, ContainerIds, ContainerStatuses                    string //nolint:revive // Podman's field names
	NumberOfContainers                                                 int
	Labels                                                             map[string]string
}

func podPsCmd(env Env, g *globals) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	c := &cobra.Command{
		Use:     "ps [options]",
		Aliases: []string{"ls", "list"},
		Short:   "List pods",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			pods, err := e.Pods()
			if err != nil {
				return err
			}
			var rows []podRow
			var list []podListEntry
			for _, p := range pods {
				infra, members, err := e.PodContainers(p)
				if err != nil {
					return err
				}
				entry := w.podEntry(p, infra, members)
				list = append(list, entry)
				ago := humanDuration(env.now().Sub(p.Created)) + " ago"
				r := podRow{ID: network.ShortID(p.ID), Name: p.Name, Status: entry.Status,
					Created: ago, CreatedHuman: ago, InfraID: network.ShortID(p.InfraID),
					NumberOfContainers: len(members) + 1, Labels: p.Labels}
				if noTrunc {
					r.ID, r.InfraID = p.ID, p.InfraID
				}
				var names, ids, states []string
				for _, c := range entry.Containers {
					id := c.ID
					if !noTrunc {
						id = network.ShortID(id)
					}
					names, ids, states = append(names, c.Names), append(ids, id), append(states, c.Status)
				}
				r.ContainerNames, r.ContainerIds, r.ContainerStatuses = strings.Join(names, ","), strings.Join(ids, ","), strings.Join(states, ",")
				if infra != nil {
					var nets []string
					for _, n := range infra.Config.Net.Networks {
						nets = append(nets, w.netName(n.Name))
					}
					r.Networks = strings.Join(nets, ",")
				}
				rows = append(rows, r)
			}
			if isJSON(format) {
				if list == nil {
					list = []podListEntry{}
				}
				return listJSON(env.Stdout, list)
			}
			return printList(env, "pod ps", rows, func(r podRow) string { return r.ID }, quiet, format,
				"table {{.ID}} {{.Name}} {{.Status}} {{.Created}} {{.InfraID}} {{.NumberOfContainers}}",
				headers(podRow{}, map[string]string{"ID": "POD ID", "Created": "CREATED", "CreatedHuman": "CREATED", "InfraID": "INFRA ID",
					"NumberOfContainers": "# OF CONTAINERS", "ContainerNames": "NAMES", "ContainerIds": "IDS", "ContainerStatuses": "STATUS"}))
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "print full IDs")
	c.Flags().StringVar(&format, "format", "", "Go template or json")
	return c
}

// podListEntry is a pod in `pod ps --format json`: Podman 4.3's
// ListPodsReport.
type podListEntry struct {
	Cgroup     string             `json:"Cgroup"`
	Containers []podListContainer `json:"Containers"`
	Created    time.Time          `json:"Created"`
	ID         string             `json:"Id"`
	InfraID    string             `json:"InfraId"`
	Name       string             `json:"Name"`
	Namespace  string             `json:"Namespace"`
	Networks   []string           `json:"Networks"`
	Status     string             `json:"Status"`
	Labels     map[string]string  `json:"Labels"`
}

// podListContainer is a container in a podListEntry.
type podListContainer struct {
	ID     string `json:"Id"`
	Names  string `json:"Names"`
	Status string `json:"Status"`
}

// podEntry builds a pod's `pod ps --format json` entry.
func (w *world) podEntry(p *engine.Pod, infra *engine.Container, members []*engine.Container) podListEntry {
	out := podListEntry{
		Cgroup: "", Containers: []podListContainer{}, Created: p.Created, ID: p.ID, InfraID: p.InfraID,
		Name: p.Name, Networks: []string{}, Status: engine.PodStatus(infra, members), Labels: p.Labels,
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, c := range append([]*engine.Container{infra}, members...) {
		if c == nil {
			continue
		}
		st := c.State.Status
		if st == engine.StateStopped {
			st = engine.StateExited
		}
		out.Containers = append(out.Containers, podListContainer{ID: c.Config.ID, Names: c.Config.Name, Status: st})
	}
	if infra != nil {
		for _, n := range infra.Config.Net.Networks {
			out.Networks = append(out.Networks, w.netName(n.Name))
		}
	}
	return out
}

// podInspect is the Podman-compatible subset of pod inspect.
type podInspect struct {
	ID               string             `json:"Id"`
	Name             string             `json:"Name"`
	Created          time.Time          `json:"Created"`
	CreateCommand    []string           `json:"CreateCommand"`
	ExitPolicy       string             `json:"ExitPolicy"`
	State            string             `json:"State"`
	Hostname         string             `json:"Hostname"`
	Labels           map[string]string  `json:"Labels"`
	CreateCgroup     bool               `json:"CreateCgroup"`
	CgroupParent     string             `json:"CgroupParent"`
	CgroupPath       string             `json:"CgroupPath"`
	CreateInfra      bool               `json:"CreateInfra"`
	InfraContainerID string             `json:"InfraContainerID"`
	InfraConfig      podInfraConfig     `json:"InfraConfig"`
	SharedNamespaces []string           `json:"SharedNamespaces"`
	NumContainers    int                `json:"NumContainers"`
	Containers       []podInspectMember `json:"Containers"`
}

type podInfraConfig struct {
	PortBindings   map[string][]inspectPort `json:"PortBindings"`
	Networks       []string                 `json:"Networks"`
	NetworkOptions map[string][]string      `json:"NetworkOptions,omitempty"`
	HostNetwork    bool                     `json:"HostNetwork"`
	DNSServer      []string                 `json:"DNSServer,omitempty"`
	DNSSearch      []string                 `json:"DNSSearch,omitempty"`
	DNSOption      []string                 `json:"DNSOption,omitempty"`
	NoManageHosts  bool                     `json:"NoManageHosts"`
	HostAdd        []string                 `json:"HostAdd,omitempty"`
}

type podInspectMember struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State string `json:"State"`
}

func podInspectCmd(env Env, g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [options] POD...",
		Short: "Show pods' configuration and state",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			var out []podInspect
			for _, a := range args {
				p, err := e.GetPod(a)
				if err != nil {
					return podErr(err)
				}
				pi, err := w.podInspectOf(e, p)
				if err != nil {
					return err
				}
				out = append(out, pi)
			}
			if format != "" && !isJSON(format) {
				r, err := parseReport("pod inspect", strings.TrimPrefix(format, "table "), nil)
				if err != nil {
					return err
				}
				return r.render(env.Stdout, out, false)
			}
			if len(out) == 1 {
				// Podman 4.3 prints a single pod as an object.
				return inspectJSON(env.Stdout, out[0])
			}
			return inspectJSON(env.Stdout, out)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template or json")
	return c
}

// podInspectOf builds pod inspect's view of p.
func (w *world) podInspectOf(e *engine.Engine, p *engine.Pod) (podInspect, error) {
	infra, members, err := e.PodContainers(p)
	if err != nil {
		return podInspect{}, err
	}
	// berth records no create command and makes no pod cgroup.
	pi := podInspect{ID: p.ID, Name: p.Name, Created: p.Created, CreateCommand: []string{}, ExitPolicy: "continue", State: engine.PodStatus(infra, members),
		Hostname: p.Hostname, Labels: p.Labels, CreateInfra: true, InfraContainerID: p.InfraID,
		SharedNamespaces: []string{"ipc", "net", "uts"}, NumContainers: len(members) + 1}
	if infra != nil {
		ic := w.inspectContainer(e, infra)
		pi.InfraConfig = podInfraConfig{PortBindings: ic.HostConfig.PortBindings, HostNetwork: infra.Config.Net.Kind == "host",
			DNSServer: ic.HostConfig.Dns, DNSSearch: ic.HostConfig.DnsSearch, DNSOption: ic.HostConfig.DnsOptions,
			NoManageHosts: infra.Config.NoHosts, HostAdd: ic.HostConfig.ExtraHosts}
		for _, n := range infra.Config.Net.Networks {
			pi.InfraConfig.Networks = append(pi.InfraConfig.Networks, w.netName(n.Name))
		}
		pi.Containers = append(pi.Containers, podInspectMember{ID: infra.Config.ID, Name: infra.Config.Name, State: infra.State.Status})
	}
	for _, m := range members {
		pi.Containers = append(pi.Containers, podInspectMember{ID: m.Config.ID, Name: m.Config.Name, State: m.State.Status})
	}
	return pi, nil
}
