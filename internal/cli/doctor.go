package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/doctor"
	"github.com/berthnet/berth/internal/doctor/survey"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/netstore"
)

func doctorCmd(env Env, g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "doctor [options] [CONTAINER|NETWORK]",
		Short: "Find why container traffic fails, and say how to fix it",
		Long: `Check every network that has containers (or only the network, or the
networks of the container, named) for what breaks container traffic and
berth can see: forwarding sysctls off, berth's firewall rules or a
published port missing, another table's forward chain dropping traffic,
strict rp_filter, host or VPN routes over a network's subnet, the DNS
server down or not on the gateway, a published port bound by a host
process, a bridge MTU above the uplink's, conntrack entries still going to
an old container address. Each finding says what, why traffic fails, and
the fix. Exit 0 when nothing is found, 1 when something is, 125 when the
check itself fails. Needs root (it reads the firewall and conntrack).`,
		Example: `  berth network doctor
  berth network doctor web
  berth network doctor --format json mynet`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && !isJSON(format) && format != "text" {
				return fmt.Errorf("--format %q: want json or text", format)
			}
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			rep, err := w.doctor(args)
			if err != nil {
				return err
			}
			if isJSON(format) {
				err = rep.WriteJSON(env.Stdout)
			} else {
				err = rep.WriteText(env.Stdout)
			}
			if err != nil {
				return err
			}
			if !rep.Healthy {
				return &exitError{code: 1}
			}
			return nil
		},
		ValidArgsFunction: completeNetworks(env, g),
	}
	c.Flags().StringVar(&format, "format", "", "json for tools (default: text)")
	return c
}

// doctor surveys the host and berth's records and checks them, limited to
// the network or container named in args.
func (w *world) doctor(args []string) (doctor.Report, error) {
	cfg, err := w.hostConfig()
	if err != nil {
		return doctor.Report{}, err
	}
	sc := survey.Config{StateDir: cfg.StateDir, Firewall: cfg.FirewallDriver, DNSPort: cfg.DNSPort}
	if w.rootlessBridges() {
		sc.HostNetns = w.rootlessNetNS().Path()
		if _, err := os.Stat(sc.HostNetns); err != nil {
			return doctor.NewReport(nil, nil, []string{"the rootless network namespace is not running: no container is attached"}), nil
		}
	}
	in, err := survey.Survey(sc)
	var notes []string
	if err != nil {
		notes = append(notes, fmt.Sprintf("some of berth's records could not be read: %v", err))
	}
	w.nameContainers(&in)
	scope, err := w.doctorScope(in, args)
	if err != nil {
		return doctor.Report{}, err
	}
	findings := scope.filter(doctor.Check(in))
	nets := scope.networks(in)
	for _, r := range doctor.Remarks(in) {
		if slices.Contains(nets, r.Network) {
			notes = append(notes, "network "+r.Network+": "+r.Text)
		}
	}
	notes = append(notes, in.Host.Unread...)
	if fw := in.Host.Firewall; !fw.Checked {
		notes = append(notes, fmt.Sprintf("the %s firewall driver cannot report its own rules: berth's rules were not checked", fw.Driver))
	}
	return doctor.NewReport(nets, findings, notes), nil
}

// nameContainers fills in container names and the monitors that hold
// their published ports, from the engine's records.
func (w *world) nameContainers(in *doctor.Input) {
	e, err := w.engine()
	if err != nil {
		return
	}
	ctrs, err := e.List()
	if err != nil {
		return
	}
	att, _ := e.Attached()
	ctrs = append(ctrs, att...)
	byID := map[string]*engine.Container{}
	for _, c := range ctrs {
		byID[c.Config.ID] = c
	}
	for i := range in.Attachments {
		a := &in.Attachments[i]
		if c := byID[a.ContainerID]; c != nil {
			a.ContainerName = c.Config.Name
			if c.State.MonitorPid > 0 {
				a.Holders = append(a.Holders, c.State.MonitorPid)
			}
		}
	}
}

// doctorScope is what the doctor reports on: every network, one network,
// or one container's networks.
type doctorScope struct {
	network   string
	container string
	nets      []string
}

func (w *world) doctorScope(in doctor.Input, args []string) (doctorScope, error) {
	if len(args) == 0 {
		return doctorScope{}, nil
	}
	ref := args[0]
	for _, n := range in.Networks {
		if n.Name == ref {
			return doctorScope{network: ref}, nil
		}
	}
	if all, err := w.store.List(); err == nil {
		if n, err := netstore.Find(all, ref); err == nil {
			return doctorScope{network: n.Name}, nil
		}
	}
	id := w.containerID(in, ref)
	if id == "" {
		return doctorScope{}, &exitError{code: 125, err: fmt.Errorf("no network or container %q", ref)}
	}
	s := doctorScope{container: id}
	for _, a := range in.Attachments {
		if a.ContainerID == id && !slices.Contains(s.nets, a.Network) {
			s.nets = append(s.nets, a.Network)
		}
	}
	return s, nil
}

// containerID resolves a container reference: the engine's names and IDs,
// else an attachment's container ID or a unique prefix of one.
func (w *world) containerID(in doctor.Input, ref string) string {
	if e, err := w.engine(); err == nil {
		all, _ := e.List()
		att, _ := e.Attached()
		if c, err := engine.Lookup(append(all, att...), ref); err == nil {
			return c.Config.ID
		}
	}
	found := ""
	for _, a := range in.Attachments {
		if a.ContainerName == ref || a.ContainerID == ref {
			return a.ContainerID
		}
		if strings.HasPrefix(a.ContainerID, ref) {
			if found != "" && found != a.ContainerID {
				return ""
			}
			found = a.ContainerID
		}
	}
	return found
}

func (s doctorScope) filter(fs []doctor.Finding) []doctor.Finding {
	var out []doctor.Finding
	for _, f := range fs {
		switch {
		case s.network != "" && f.Network != s.network:
		case s.container != "" && (!slices.Contains(s.nets, f.Network) || f.Container != "" && f.Container != s.container):
		default:
			out = append(out, f)
		}
	}
	return out
}

func (s doctorScope) networks(in doctor.Input) []string {
	var out []string
	for _, n := range in.Networks {
		if s.network != "" && n.Name != s.network || s.container != "" && !slices.Contains(s.nets, n.Name) {
			continue
		}
		out = append(out, n.Name)
	}
	return out
}
