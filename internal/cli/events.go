package cli

import (
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/events"
)

// eventsFlags are the flags of berth events (Podman's).
type eventsFlags struct {
	filters         []string
	since, until    string
	stream, noTrunc bool
	format          string
}

func eventsCmd(env Env, g *globals) *cobra.Command {
	var f eventsFlags
	c := &cobra.Command{
		Use:   "events [options]",
		Short: "Show berth events",
		Long: `Print what happened to containers, pods, networks, volumes and images,
oldest first, then new events as they happen (--stream=false: exit after
the past ones). --since and --until take RFC 3339 times, dates, Unix
times or durations (10m: ten minutes before now for --since, after now
for --until); with --until, berth stops at that time.`,
		Example: `  berth events
  berth events --filter event=create
  berth events --format {{.Image}}
  berth events --since 1h30s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := f.query(env.now())
			if err != nil {
				return err
			}
			pr, err := newEventPrinter(env.Stdout, f.format, !f.noTrunc)
			if err != nil {
				return err
			}
			_, runRoot := engineDirs(env, g)
			return events.Open(events.PathIn(runRoot)).Read(cmd.Context(), q, pr.print)
		},
	}
	fl := c.Flags()
	fl.StringArrayVarP(&f.filters, "filter", "f", nil, "filter output ("+strings.Join(events.FilterKeys, ", ")+")")
	fl.StringVar(&f.format, "format", "", "format the output using a Go template, or json")
	fl.BoolVar(&f.noTrunc, "no-trunc", true, "do not truncate the output")
	fl.StringVar(&f.since, "since", "", "show all events created since timestamp")
	fl.StringVar(&f.until, "until", "", "show all events until timestamp")
	fl.BoolVar(&f.stream, "stream", true, "stream new events; for testing only")
	return c
}

// query is the journal query of the flags, times read against now.
func (f eventsFlags) query(now time.Time) (events.Query, error) {
	var q events.Query
	filter, err := events.ParseFilter(f.filters)
	if err != nil {
		return q, err
	}
	q.Filter = filter
	if f.since != "" {
		if q.Since, err = parseLogTime(f.since, now, true); err != nil {
			return q, fmt.Errorf("--since %q: %w", f.since, err)
		}
	}
	if f.until != "" {
		if q.Until, err = parseLogTime(f.until, now, false); err != nil {
			return q, fmt.Errorf("--until %q: %w", f.until, err)
		}
	}
	// Podman follows unless --stream=false; an --until in the past ends
	// the stream at once.
	q.Follow = f.stream
	return q, nil
}

// eventPrinter prints events as Podman does: its default line, JSON, or
// a Go template over Podman's keys.
type eventPrinter struct {
	w     io.Writer
	json  bool
	tmpl  *template.Template
	trunc bool
}

func newEventPrinter(w io.Writer, format string, trunc bool) (*eventPrinter, error) {
	p := &eventPrinter{w: w, trunc: trunc}
	switch {
	case format == "":
	case isJSON(format):
		p.json = true
	default:
		format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
		t, err := template.New("events").Funcs(templateFuncs).Parse(format)
		if err != nil {
			return nil, fmt.Errorf("parse --format: %w", err)
		}
		p.tmpl = t
	}
	return p, nil
}

func (p *eventPrinter) print(e events.Event) error {
	pe := events.ToPodman(e)
	pe.Time = pe.Time.Local()
	var err error
	switch {
	case p.json:
		_, err = fmt.Fprintln(p.w, pe.JSON())
	case p.tmpl != nil:
		var sb strings.Builder
		if err = p.tmpl.Execute(&sb, pe); err == nil {
			_, err = fmt.Fprintln(p.w, sb.String())
		}
	default:
		_, err = fmt.Fprintln(p.w, pe.String(p.trunc))
	}
	return err
}
