package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/network"
)

// psContainer is a container in `ps --format json`: Podman 4.3's
// ListContainer, key for key and type for type (Created a Unix time,
// CreatedAt a human duration, StartedAt and ExitedAt Unix times).
type psContainer struct {
	AutoRemove bool                  `json:"AutoRemove"`
	Command    []string              `json:"Command"`
	CreatedAt  string                `json:"CreatedAt"`
	Exited     bool                  `json:"Exited"`
	ExitedAt   int64                 `json:"ExitedAt"`
	ExitCode   int                   `json:"ExitCode"`
	ID         string                `json:"Id"`
	Image      string                `json:"Image"`
	ImageID    string                `json:"ImageID"`
	IsInfra    bool                  `json:"IsInfra"`
	Labels     map[string]string     `json:"Labels"`
	Mounts     []string              `json:"Mounts"`
	Names      []string              `json:"Names"`
	Namespaces map[string]string     `json:"Namespaces"`
	Networks   []string              `json:"Networks"`
	Pid        int                   `json:"Pid"`
	Pod        string                `json:"Pod"`
	PodName    string                `json:"PodName"`
	Ports      []network.PortMapping `json:"Ports"`
	Size       *struct{}             `json:"Size"`
	StartedAt  int64                 `json:"StartedAt"`
	State      string                `json:"State"`
	Status     string                `json:"Status"`
	Created    int64                 `json:"Created"`
}

// psRow is a container as `ps --format TEMPLATE` sees it: Podman's
// psReporter, whose methods turn the list entry into strings.
type psRow struct {
	psContainer
	created, started, finished time.Time
	now                        time.Time
	noTrunc                    bool
	// restartPolicy is the --restart policy's name (filter restart-policy).
	restartPolicy string
	// state is the human status without the health (Status has it).
	state string
}

// ID is the short ID, the full one with --no-trunc.
func (r psRow) ID() string {
	if r.noTrunc {
		return r.psContainer.ID
	}
	return network.ShortID(r.psContainer.ID)
}

// Command is the command line, cut to 17 characters and "..." unless
// --no-trunc.
func (r psRow) Command() string {
	s := strings.Join(r.psContainer.Command, " ")
	if !r.noTrunc && len(s) > 17 {
		return s[:17] + "..."
	}
	return s
}

// Created is the creation time.
func (r psRow) Created() time.Time { return r.created }

// CreatedAt is the creation time as Go prints it.
func (r psRow) CreatedAt() string { return r.created.String() }

// CreatedHuman is how long ago the container was created.
func (r psRow) CreatedHuman() string { return humanDuration(r.now.Sub(r.created)) + " ago" }

// RunningFor is CreatedHuman.
func (r psRow) RunningFor() string { return r.CreatedHuman() }

// State is the human status without the health, as in Podman's
// templates.
func (r psRow) State() string { return r.state }

// Names is the container's name.
func (r psRow) Names() string { return strings.Join(r.psContainer.Names, ",") }

// Networks lists the networks, comma-separated.
func (r psRow) Networks() string { return strings.Join(r.psContainer.Networks, ",") }

// Ports lists the published ports as 0.0.0.0:8080->80/tcp.
func (r psRow) Ports() string { return formatPorts(r.psContainer.Ports) }

// Pod is the pod's short ID.
func (r psRow) Pod() string {
	if r.noTrunc {
		return r.psContainer.Pod
	}
	return network.ShortID(r.psContainer.Pod)
}

// psOptions are ps's flags.
type psOptions struct {
	all, quiet, noTrunc, pod, latest, noHeading bool
	last                                        int
	format, sortBy                              string
	filters                                     []string
}

func psCmd(env Env, g *globals) *cobra.Command {
	var o psOptions
	c := &cobra.Command{
		Use:   "ps [options]",
		Short: "List containers",
		Long:  "List containers in Podman's columns, as Podman's JSON (--format json) or through a Go template with Podman's field names.",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPs(cmd, env, g, &o)
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show every container, not only running ones")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only the IDs")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "print full IDs and commands")
	f.BoolVarP(&o.pod, "pod", "p", false, "add the pod's ID and name")
	f.BoolVarP(&o.latest, "latest", "l", false, "show only the latest created container (all states)")
	f.BoolVar(&o.noHeading, "noheading", false, "print no headers")
	f.IntVarP(&o.last, "last", "n", -1, "show only the N last created containers (all states)")
	f.StringVar(&o.format, "format", "", "Go template or json")
	f.StringVar(&o.sortBy, "sort", "created", "sort by command, created, id, image, names, runningfor, status")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "filter by id, name, label, status, ancestor, network, pod, exited, restart-policy (KEY=VALUE)")
	return c
}

func runPs(cmd *cobra.Command, env Env, g *globals, o *psOptions) error {
	match, err := parsePsFilters(o.filters)
	if err != nil {
		return err
	}
	if o.latest {
		o.last = 1
	}
	w, e, err := openEngine(env, g)
	if err != nil {
		return err
	}
	cs, err := e.List()
	if err != nil {
		return err
	}
	pods, err := e.Pods()
	if err != nil {
		return err
	}
	info := psInfo{now: env.now(), pods: map[string]*engine.Pod{}, images: imageNamer(env, g), defNet: w.store.DefaultName(), withPod: o.pod}
	for _, p := range pods {
		info.pods[p.ID] = p
	}
	byID := map[string]*engine.Container{}
	for _, c := range cs {
		byID[c.Config.ID] = c
	}
	info.byID = byID
	var rows []psRow
	for _, c := range cs {
		r := info.row(c)
		r.noTrunc = o.noTrunc
		if (o.all || o.last >= 0 || r.psContainer.State == engine.StateRunning) && match(r, info) {
			rows = append(rows, r)
		}
	}
	if o.last >= 0 {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].created.After(rows[j].created) })
		rows = rows[:min(o.last, len(rows))]
	}
	if err := sortPs(rows, o.sortBy); err != nil {
		return err
	}
	return printPs(cmd, env, rows, o)
}

// printPs prints the rows as IDs, Podman's JSON, or a template.
func printPs(cmd *cobra.Command, env Env, rows []psRow, o *psOptions) error {
	switch {
	case isJSON(o.format):
		out := make([]psContainer, 0, len(rows))
		for _, r := range rows {
			out = append(out, r.psContainer)
		}
		return listJSON(env.Stdout, out)
	case o.quiet && o.format == "":
		for _, r := range rows {
			fmt.Fprintln(env.Stdout, r.ID())
		}
		return nil
	}
	def := "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	if o.pod {
		def += "\t{{.Pod}}\t{{.PodName}}"
	}
	return renderList(cmd, env.Stdout, "ps", o.format, def, psHeaders, rows, o.noHeading)
}

// psHeaders are the column titles of ps's template fields.
var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "ImageID": "IMAGE ID", "Command": "COMMAND",
	"CreatedHuman": "CREATED", "CreatedAt": "CREATED AT", "Created": "CREATED", "RunningFor": "CREATED",
	"Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "Pod": "POD ID",
	"PodName": "PODNAME", "Networks": "NETWORKS", "Labels": "LABELS", "Mounts": "MOUNTS",
	"ExitCode": "EXIT CODE", "Exited": "EXITED", "ExitedAt": "EXITED AT", "StartedAt": "STARTED AT",
	"Pid": "PID", "IsInfra": "IS INFRA", "AutoRemove": "AUTO REMOVE", "Namespaces": "NAMESPACES", "Size": "SIZE",
}

// psInfo is what rows are built from besides the container itself.
type psInfo struct {
	now     time.Time
	pods    map[string]*engine.Pod
	byID    map[string]*engine.Container
	images  func(id string) string
	defNet  string
	withPod bool
}

// mountPoints lists where the container's volumes, binds and tmpfs
// mounts are, as Podman's ps does (an empty list without any).
func mountPoints(cf engine.Config) []string {
	out := []string{}
	for _, m := range cf.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

// row builds c's ps entry.
func (in psInfo) row(c *engine.Container) psRow {
	cf, st := c.Config, c.State
	p := psContainer{
		AutoRemove: cf.Remove, Command: cf.Args, ExitCode: st.ExitCode, ID: cf.ID,
		Image: in.imageRef(c), ImageID: cf.ImageID, IsInfra: cf.Infra, Labels: cf.Labels,
		Mounts: mountPoints(cf), Names: []string{cf.Name}, Namespaces: map[string]string{}, Networks: []string{},
		Pid: st.Pid, Pod: cf.Pod, State: st.Status, Ports: cf.Ports,
		Created: cf.Created.Unix(), StartedAt: st.StartedAt.Unix(), ExitedAt: st.FinishedAt.Unix(),
		CreatedAt: humanDuration(in.now.Sub(cf.Created)) + " ago",
	}
	if p.State == engine.StateStopped {
		p.State = engine.StateExited
	}
	p.Exited = p.State == engine.StateExited
	if !p.Exited {
		p.ExitedAt = time.Time{}.Unix()
	}
	if pod := in.pods[cf.Pod]; pod != nil {
		if in.withPod {
			p.PodName = pod.Name
		}
		// Members publish the infra container's ports.
		if infra := in.byID[pod.InfraID]; infra != nil && len(p.Ports) == 0 && !cf.Infra {
			p.Ports = infra.Config.Ports
		}
	}
	for _, n := range cf.Net.Networks {
		if n.Name == "" { // the default network, as Podman names it
			n.Name = in.defNet
		}
		p.Networks = append(p.Networks, n.Name)
	}
	if st.Paused && p.State == engine.StateRunning {
		p.State = engine.StatePaused
	}
	switch p.State {
	case engine.StatePaused:
		p.Status = "Paused"
	case engine.StateRunning:
		p.Status = "Up " + humanDuration(in.now.Sub(st.StartedAt)) + " ago"
	case engine.StateExited:
		p.Status = fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(in.now.Sub(st.FinishedAt)))
	default:
		p.Status = "Created"
	}
	state := p.Status
	if p.State == engine.StateRunning && cf.Healthcheck.Defined() && st.Health.Status != "" {
		p.Status += " (" + st.Health.Status + ")"
	}
	return psRow{psContainer: p, created: cf.Created, started: st.StartedAt, finished: st.FinishedAt, now: in.now, restartPolicy: cf.RestartPolicy.Name, state: state}
}

// imageRef is the image as Podman names it: the stored image's first
// name (localhost/NAME:latest for a local one).
func (in psInfo) imageRef(c *engine.Container) string {
	if c.Config.ImageID != "" && in.images != nil {
		if n := in.images(c.Config.ImageID); n != "" {
			return n
		}
	}
	return imageName(c)
}

// imageNamer returns a lookup of an image's first name by ID; it opens
// the image store on first use (only containers from images need it) and
// finds nothing without one.
func imageNamer(env Env, g *globals) func(string) string {
	var s *image.Store
	var openErr error
	return func(id string) string {
		if s == nil && openErr == nil {
			s, openErr = openImages(env, g)
		}
		if openErr != nil {
			return ""
		}
		img, err := s.Lookup(id)
		if err != nil || len(img.Names) == 0 {
			return ""
		}
		return img.Names[0]
	}
}

// psFilter is one --filter KEY=VALUE: values of one key are ORed, keys
// ANDed, as in Podman.
type psFilter func(r psRow, in psInfo) bool

var psFilterKeys = map[string]func(v string) (psFilter, error){
	"id": func(v string) (psFilter, error) {
		return func(r psRow, _ psInfo) bool { return strings.HasPrefix(r.psContainer.ID, v) }, nil
	},
	"name": func(v string) (psFilter, error) {
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, err
		}
		return func(r psRow, _ psInfo) bool { return re.MatchString(r.Names()) }, nil
	},
	"label": func(v string) (psFilter, error) {
		k, want, hasV := strings.Cut(v, "=")
		return func(r psRow, _ psInfo) bool {
			got, ok := r.Labels[k]
			return ok && (!hasV || got == want)
		}, nil
	},
	"status": func(v string) (psFilter, error) {
		switch v {
		case "created", "running", "exited", "paused", "stopped", "unknown", "configured", "removing":
		default:
			return nil, fmt.Errorf("%s is not a valid status", v)
		}
		return func(r psRow, _ psInfo) bool {
			return r.psContainer.State == v || (v == "configured" && r.psContainer.State == engine.StateCreated)
		}, nil
	},
	"ancestor": func(v string) (psFilter, error) {
		return func(r psRow, _ psInfo) bool { return ancestorMatch(r.psContainer, v) }, nil
	},
	"network": func(v string) (psFilter, error) {
		return func(r psRow, _ psInfo) bool {
			for _, n := range r.psContainer.Networks {
				if n == v {
					return true
				}
			}
			return false
		}, nil
	},
	"pod": func(v string) (psFilter, error) {
		return func(r psRow, in psInfo) bool {
			p := in.pods[r.psContainer.Pod]
			return p != nil && (p.Name == v || strings.HasPrefix(p.ID, v))
		}, nil
	},
	"restart-policy": func(v string) (psFilter, error) {
		if _, err := engine.ParseRestartPolicy(v); err != nil || strings.Contains(v, ":") {
			return nil, fmt.Errorf("%s invalid restart policy", v)
		}
		return func(r psRow, _ psInfo) bool { return r.restartPolicy == v }, nil
	},
	"exited": func(v string) (psFilter, error) {
		code, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("exited code out of range %q", v)
		}
		return func(r psRow, _ psInfo) bool { return r.Exited && r.ExitCode == code }, nil
	},
}

// ancestorMatch reports whether the container's image is ref: its full
// name, the name without localhost/ or :latest, or an ID prefix.
func ancestorMatch(p psContainer, ref string) bool {
	if ref == "" {
		return false
	}
	if strings.HasPrefix(p.ImageID, ref) {
		return true
	}
	short := strings.TrimPrefix(p.Image, "localhost/")
	return ref == p.Image || ref == short || ref == strings.TrimSuffix(short, ":latest")
}

// parsePsFilters turns --filter values into one predicate.
func parsePsFilters(filters []string) (psFilter, error) {
	byKey := map[string][]psFilter{}
	var order []string
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		mk := psFilterKeys[k]
		if mk == nil {
			return nil, fmt.Errorf("%s is an invalid filter", k)
		}
		if !ok {
			return nil, fmt.Errorf("invalid filter %q: want KEY=VALUE", f)
		}
		pf, err := mk(v)
		if err != nil {
			return nil, fmt.Errorf("--filter %s: %w", f, err)
		}
		if byKey[k] == nil {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], pf)
	}
	return func(r psRow, in psInfo) bool {
		for _, k := range order {
			hit := false
			for _, pf := range byKey[k] {
				if pf(r, in) {
					hit = true
					break
				}
			}
			if !hit {
				return false
			}
		}
		return true
	}, nil
}

// psSortKeys are the --sort keys and their orders.
var psSortKeys = map[string]func(a, b psRow) bool{
	"command":    func(a, b psRow) bool { return a.Command() < b.Command() },
	"created":    func(a, b psRow) bool { return a.created.Before(b.created) },
	"id":         func(a, b psRow) bool { return a.psContainer.ID < b.psContainer.ID },
	"image":      func(a, b psRow) bool { return a.Image < b.Image },
	"names":      func(a, b psRow) bool { return a.Names() < b.Names() },
	"runningfor": func(a, b psRow) bool { return a.created.After(b.created) },
	"status":     func(a, b psRow) bool { return a.Status < b.Status },
	// berth keeps no sizes: size keeps the creation order.
	"size": func(a, b psRow) bool { return a.created.Before(b.created) },
}

// sortPs sorts rows by key.
func sortPs(rows []psRow, key string) error {
	less := psSortKeys[key]
	if less == nil {
		return fmt.Errorf("invalid option for --sort, options are: command, created, id, image, names, runningfor, size, or status")
	}
	sort.SliceStable(rows, func(i, j int) bool { return less(rows[i], rows[j]) })
	return nil
}
