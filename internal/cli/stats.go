package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
)

// statsRow is one line of stats: a sample and the CPU share since the
// previous one.
type statsRow struct {
	engine.Stats
	cpu, avg float64 // percent
	// UpTime is the CPU time used (Podman's name for it).
	UpTime time.Duration
}

// newStatsRow computes the CPU shares of s: since prev (or since the
// start without one) and over the container's life.
func newStatsRow(s engine.Stats, prev *engine.Stats) statsRow {
	r := statsRow{Stats: s, UpTime: time.Duration(s.CPUNanos)}
	if life := s.At.Sub(s.Started); life > 0 && !s.Started.IsZero() {
		r.avg = float64(s.CPUNanos) * 100 / float64(life)
	}
	r.cpu = r.avg
	if prev != nil && s.At.After(prev.At) && s.CPUNanos >= prev.CPUNanos {
		r.cpu = float64(s.CPUNanos-prev.CPUNanos) * 100 / float64(s.At.Sub(prev.At))
	}
	return r
}

func (r statsRow) ID() string       { return r.Stats.ID[:min(12, len(r.Stats.ID))] }
func (r statsRow) CPUPerc() string  { return percent(r.cpu) }
func (r statsRow) AVGCPU() string   { return percent(r.avg) }
func (r statsRow) MemUsage() string { return humanPair(r.Stats.MemUsage, r.MemLimit) }
func (r statsRow) NetIO() string    { return humanPair(r.NetInput, r.NetOutput) }
func (r statsRow) BlockIO() string  { return humanPair(r.BlockInput, r.BlockOut) }

// MemPerc is the memory used, in percent of the limit.
func (r statsRow) MemPerc() string {
	if r.MemLimit == 0 {
		return percent(0)
	}
	return percent(float64(r.Stats.MemUsage) * 100 / float64(r.MemLimit))
}

// PIDS is the number of processes ("--" for none).
func (r statsRow) PIDS() string {
	if r.PIDs == 0 {
		return "--"
	}
	return strconv.FormatUint(r.PIDs, 10)
}

// percent formats as Podman: two decimals, "--" for zero.
func percent(f float64) string {
	if f == 0 {
		return "--"
	}
	return fmt.Sprintf("%.2f%%", f)
}

// humanPair is "A / B" in decimal units ("-- / --" when both are zero).
func humanPair(a, b uint64) string {
	if a == 0 && b == 0 {
		return "-- / --"
	}
	return humanSize4(float64(a)) + " / " + humanSize4(float64(b))
}

// humanSize4 is go-units' HumanSize: four significant digits, decimal
// units, no space.
func humanSize4(f float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

var statsHeaders = map[string]string{
	"ID": "ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
	"NetIO": "NET IO", "BlockIO": "BLOCK IO", "PIDS": "PIDS", "UpTime": "CPU TIME", "AVGCPU": "AVG CPU %",
}

const statsDefault = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDS}}\t{{.UpTime}}\t{{.AVGCPU}}"

// statsJSON is Podman's stats --format json entry.
type statsJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CPUTime    string `json:"cpu_time"`
	CPUPercent string `json:"cpu_percent"`
	AverageCPU string `json:"avg_cpu"`
	MemUsage   string `json:"mem_usage"`
	MemPerc    string `json:"mem_percent"`
	NetIO      string `json:"net_io"`
	BlockIO    string `json:"block_io"`
	PIDs       string `json:"pids"`
}

func printStats(cmd *cobra.Command, env Env, rows []statsRow, format string) error {
	if isJSON(format) {
		out := make([]statsJSON, 0, len(rows))
		for _, r := range rows {
			out = append(out, statsJSON{ID: r.ID(), Name: r.Name, CPUTime: r.UpTime.String(), CPUPercent: r.CPUPerc(), AverageCPU: r.AVGCPU(),
				MemUsage: r.MemUsage(), MemPerc: r.MemPerc(), NetIO: r.NetIO(), BlockIO: r.BlockIO(), PIDs: r.PIDS()})
		}
		b, err := json.MarshalIndent(out, "", " ")
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, string(b))
		return nil
	}
	return renderList(cmd, env.Stdout, "stats", format, statsDefault, statsHeaders, rows, false)
}

func statsCmd(env Env, g *globals) *cobra.Command {
	var all, noStream, noReset, noTrunc bool
	var format string
	var interval int
	c := &cobra.Command{
		Use:   "stats [options] [CONTAINER...]",
		Short: "Display a live stream of container resource usage statistics",
		Long: "Display the CPU, memory, network I/O, block I/O and process counts of running containers\n" +
			"(read from their cgroups and network namespaces), every --interval seconds until\n" +
			"interrupted, or once with --no-stream.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return fmt.Errorf("--all, --latest and containers cannot be used together")
			}
			if interval < 1 {
				return fmt.Errorf("invalid interval, must be a positive number greater zero")
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			prev := map[string]*engine.Stats{}
			for {
				rows, err := sampleStats(e, args, all, prev)
				if err != nil {
					return err
				}
				if !noStream && !noReset {
					fmt.Fprint(env.Stdout, "\033[2J\033[1;1H")
				}
				if err := printStats(cmd, env, rows, format); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Duration(interval) * time.Second):
				}
			}
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&all, "all", "a", false, "show all containers (only running containers are shown by default)")
	fl.StringVar(&format, "format", "", "pretty-print container statistics to JSON or using a Go template")
	fl.IntVarP(&interval, "interval", "i", 5, "time in seconds between stats reports")
	fl.BoolVar(&noReset, "no-reset", false, "disable resetting the screen between intervals")
	fl.BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	return c
}

// sampleStats samples the named containers (or every running one, every
// one with all); prev holds the previous samples by ID.
func sampleStats(e *engine.Engine, refs []string, all bool, prev map[string]*engine.Stats) ([]statsRow, error) {
	if len(refs) == 0 {
		cs, err := e.List()
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if (all || c.Running()) && !c.Config.Infra {
				refs = append(refs, c.Config.ID)
			}
		}
	}
	var rows []statsRow
	for _, ref := range refs {
		s, err := e.Stats(ref)
		if err != nil {
			return nil, fmt.Errorf("unable to get list of containers: unable to look up container %s: %w", ref, err)
		}
		rows = append(rows, newStatsRow(s, prev[s.ID]))
		prev[s.ID] = &s
	}
	return rows, nil
}
