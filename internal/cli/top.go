package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/runspec"
	"github.com/berthnet/berth/internal/safefile"
)

// topDefault are top's columns when no descriptor is given, as Podman's.
var topDefault = []string{"user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args"}

// topNames resolves user and group IDs with the container's files.
type topNames struct{ users, groups map[int]string }

func (n topNames) user(id int) string  { return nameOr(n.users, id) }
func (n topNames) group(id int) string { return nameOr(n.groups, id) }

func nameOr(m map[int]string, id int) string {
	if s, ok := m[id]; ok {
		return s
	}
	return strconv.Itoa(id)
}

// parseIDNames maps the IDs of an /etc/passwd or /etc/group file to names.
func parseIDNames(data string) map[int]string {
	out := map[int]string{}
	for _, l := range strings.Split(data, "\n") {
		f := strings.Split(l, ":")
		if len(f) < 3 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		if id, err := strconv.Atoi(f[2]); err == nil {
			if _, dup := out[id]; !dup {
				out[id] = f[0]
			}
		}
	}
	return out
}

// topColumn is one descriptor: its header and how a process shows.
type topColumn struct {
	header string
	value  func(p engine.Proc, n topNames) string
}

var topColumns = map[string]topColumn{
	"args": {"COMMAND", func(p engine.Proc, _ topNames) string {
		if len(p.Args) == 0 {
			return "[" + p.Comm + "]"
		}
		return strings.Join(p.Args, " ")
	}},
	"comm":   {"COMMAND", func(p engine.Proc, _ topNames) string { return p.Comm }},
	"etime":  {"ELAPSED", func(p engine.Proc, _ topNames) string { return p.Elapsed.String() }},
	"group":  {"GROUP", func(p engine.Proc, n topNames) string { return n.group(p.GID) }},
	"rgroup": {"RGROUP", func(p engine.Proc, n topNames) string { return n.group(p.RGID) }},
	"user":   {"USER", func(p engine.Proc, n topNames) string { return n.user(p.UID) }},
	"ruser":  {"RUSER", func(p engine.Proc, n topNames) string { return n.user(p.RUID) }},
	"huser":  {"HUSER", func(p engine.Proc, _ topNames) string { return strconv.Itoa(p.UID) }},
	"hgroup": {"HGROUP", func(p engine.Proc, _ topNames) string { return strconv.Itoa(p.GID) }},
	"nice":   {"NI", func(p engine.Proc, _ topNames) string { return strconv.Itoa(p.Nice) }},
	"pcpu":   {"%CPU", func(p engine.Proc, _ topNames) string { return pcpu(p) }},
	"pid":    {"PID", func(p engine.Proc, _ topNames) string { return strconv.Itoa(p.NSPid) }},
	"ppid":   {"PPID", func(p engine.Proc, _ topNames) string { return strconv.Itoa(p.NSPPid) }},
	"hpid":   {"HPID", func(p engine.Proc, _ topNames) string { return strconv.Itoa(p.Pid) }},
	"hppid":  {"HPPID", func(p engine.Proc, _ topNames) string { return strconv.Itoa(p.PPid) }},
	"state":  {"STATE", func(p engine.Proc, _ topNames) string { return p.State }},
	"time":   {"TIME", func(p engine.Proc, _ topNames) string { return p.CPU.String() }},
	"tty":    {"TTY", func(p engine.Proc, _ topNames) string { return ttyName(p.TTY) }},
	"vsz":    {"VSZ", func(p engine.Proc, _ topNames) string { return strconv.FormatUint(p.VSZ, 10) }},
}

// pcpu is the share of one CPU the process used over its life.
func pcpu(p engine.Proc) string {
	if p.Elapsed <= 0 {
		return "0.000"
	}
	return strconv.FormatFloat(float64(p.CPU)*100/float64(p.Elapsed), 'f', 3, 64)
}

// ttyName names a tty_nr: pts/N, ttyN, or "?" for none.
func ttyName(nr uint64) string {
	major, minor := (nr>>8)&0xfff, (nr&0xff)|((nr>>12)&0xfff00)
	switch {
	case nr == 0:
		return "?"
	case major >= 136 && major <= 143:
		return fmt.Sprintf("pts/%d", (major-136)*256+minor)
	case major == 4 && minor < 64:
		return fmt.Sprintf("tty%d", minor)
	}
	return "?"
}

// parseTopDescriptors reads top's descriptors: separate arguments or
// comma-separated lists; none gives the default columns.
func parseTopDescriptors(args []string) ([]topColumn, error) {
	var names []string
	for _, a := range args {
		for _, d := range strings.Split(a, ",") {
			if d = strings.TrimSpace(d); d != "" {
				names = append(names, d)
			}
		}
	}
	if len(names) == 0 {
		names = topDefault
	}
	var cols []topColumn
	for _, n := range names {
		c, ok := topColumns[n]
		if !ok {
			return nil, fmt.Errorf("unknown descriptor: %s", n)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// renderTop prints the table as Podman does (tab-aligned columns).
func renderTop(env Env, cols []topColumn, procs []engine.Proc, names topNames) error {
	w := tabwriter.NewWriter(env.Stdout, 12, 2, 2, ' ', 0)
	row := make([]string, len(cols))
	for i, c := range cols {
		row[i] = c.header
	}
	fmt.Fprintln(w, strings.Join(row, "\t"))
	for _, p := range procs {
		for i, c := range cols {
			row[i] = c.value(p, names)
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}

func topCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "top CONTAINER [FORMAT-DESCRIPTORS...]",
		Short: "Display the running processes of a container",
		Long: "List a running container's processes, read from /proc (the members of its cgroup).\n" +
			"Descriptors (separate or comma-separated): args, comm, etime, group, hgroup, hpid, hppid,\n" +
			"huser, nice, pcpu, pid, ppid, rgroup, ruser, state, time, tty, user, vsz. The default is\n" +
			"user pid ppid pcpu etime tty time args. Other arguments are given to ps(1) in the\n" +
			"container, as Podman does.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("you must provide the name or id of a running container")
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			cols, err := parseTopDescriptors(args[1:])
			if err != nil {
				// Not a descriptor: ps(1) options, for the container's own
				// ps, as Podman does.
				return execPS(e, env, args[0], args[1:])
			}
			c, procs, err := e.Top(args[0])
			if err != nil {
				return notFound(err, 125)
			}
			root := "/proc/" + strconv.Itoa(c.State.Pid) + "/root"
			passwd, _ := safefile.ReadInRoot(root, "etc/passwd", safefile.DefaultLimit)
			group, _ := safefile.ReadInRoot(root, "etc/group", safefile.DefaultLimit)
			return renderTop(env, cols, procs, topNames{users: parseIDNames(string(passwd)), groups: parseIDNames(string(group))})
		},
	}
	c.Flags().SetInterspersed(false) // ps(1) options after the container
	return c
}

// execPS runs the container's ps with args and prints its output but
// the line of ps itself, as Podman does, when args are no descriptors.
func execPS(e *engine.Engine, env Env, ctr string, args []string) error {
	var out, errOut bytes.Buffer
	code, err := e.Exec(ctr, runspec.Process{Args: append([]string{"ps"}, args...)}, false, nil, &out, &errOut)
	switch {
	case errors.Is(err, engine.ErrNoSuchContainer):
		return notFound(err, 125)
	case err != nil:
		return fmt.Errorf("error executing ps(1) in the container: %w", err)
	case code != 0:
		return fmt.Errorf("error executing ps(1) in the container: Runtime failed with exit status: %d and output: %s", code, strings.TrimSpace(errOut.String()))
	}
	_, err = io.WriteString(env.Stdout, withoutLines(out.String(), strings.Join(args, " ")))
	return err
}

// withoutLines drops the lines of s that contain sub.
func withoutLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" && (sub == "" || !strings.Contains(l, sub)) {
			b.WriteString(l)
		}
	}
	return b.String()
}
