package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/network"
)

// netView is a network as Go templates see it: Podman's types.Network, with
// Created as a time (so {{.Created}} prints as Podman prints it).
type netView struct {
	Name              string
	ID                string
	Driver            string
	NetworkInterface  string
	Created           time.Time
	Subnets           []network.Subnet
	Routes            []network.Route
	IPv6Enabled       bool
	Internal          bool
	DNSEnabled        bool
	NetworkDNSServers []netip.Addr
	Labels            map[string]string
	Options           map[string]string
	IPAMOptions       map[string]string
}

func viewOf(n network.Network) netView {
	t, _ := time.Parse(time.RFC3339Nano, n.Created)
	return netView{
		Name: n.Name, ID: n.ID, Driver: n.Driver, NetworkInterface: n.NetworkInterface, Created: t,
		Subnets: n.Subnets, Routes: n.Routes, IPv6Enabled: n.IPv6Enabled, Internal: n.Internal,
		DNSEnabled: n.DNSEnabled, NetworkDNSServers: n.NetworkDNSServers, Labels: n.Labels,
		Options: n.Options, IPAMOptions: n.IPAMOptions,
	}
}

// listRow is one `network ls` row: ID is shortened and Labels is k=v,k=v.
type listRow struct {
	netView
	noTrunc bool
}

// ID returns the network ID, 12 characters unless --no-trunc.
func (r listRow) ID() string {
	if r.noTrunc || len(r.netView.ID) <= 12 {
		return r.netView.ID
	}
	return r.netView.ID[:12]
}

// Labels returns the labels as k=v pairs, sorted, joined by commas.
func (r listRow) Labels() string {
	keys := make([]string, 0, len(r.netView.Labels))
	for k := range r.netView.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + r.netView.Labels[k]
	}
	return strings.Join(keys, ",")
}

// headers maps each template field to its column header: the field name
// split at case changes and upper-cased, as containers/common's report does
// (so IPv6Enabled becomes "I PV 6 ENABLED", as in Podman).
func headers(v any, overrides map[string]string) map[string]string {
	out := map[string]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			out[f.Name] = strings.ToUpper(strings.Join(splitCamel(f.Name), " "))
		}
	}
	walk(reflect.TypeOf(v))
	for k, h := range overrides {
		out[k] = strings.ToUpper(h)
	}
	return out
}

// splitCamel splits at changes between lower case, upper case, digits and
// other characters; an upper-case run followed by lower case gives its last
// letter to the next word (fatih/camelcase's rules).
func splitCamel(s string) []string {
	class := func(r rune) int {
		switch {
		case unicode.IsLower(r):
			return 1
		case unicode.IsUpper(r):
			return 2
		case unicode.IsDigit(r):
			return 3
		}
		return 4
	}
	var runs [][]rune
	last := 0
	for _, r := range s {
		c := class(r)
		if c == last && len(runs) > 0 {
			runs[len(runs)-1] = append(runs[len(runs)-1], r)
		} else {
			runs = append(runs, []rune{r})
		}
		last = c
	}
	for i := 0; i < len(runs)-1; i++ {
		if len(runs[i]) > 0 && class(runs[i][0]) == 2 && class(runs[i+1][0]) == 1 {
			runs[i+1] = append([]rune{runs[i][len(runs[i])-1]}, runs[i+1]...)
			runs[i] = runs[i][:len(runs[i])-1]
		}
	}
	var out []string
	for _, r := range runs {
		if len(r) > 0 {
			out = append(out, string(r))
		}
	}
	return out
}

var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"join":  strings.Join,
	"split": strings.Split,
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, pad, n int) string { return strings.Repeat(" ", pad) + s + strings.Repeat(" ", n) },
}

// isJSON reports whether a --format asks for JSON.
func isJSON(f string) bool {
	f = strings.TrimSpace(f)
	return f == "json" || f == "{{json .}}" || f == "{{ json . }}"
}

// report renders rows through a Go template the way Podman's report
// package does: "table " switches headers on and turns spaces into column
// breaks, \t and \n escapes are honoured, every row ends in a newline, and
// columns are aligned by a tabwriter.
type report struct {
	tmpl    *template.Template
	table   bool
	name    string
	headers map[string]string
}

func parseReport(name, format string, hdrs map[string]string) (*report, error) {
	table := strings.HasPrefix(format, "table ") || format == "table"
	if table {
		format = strings.TrimPrefix(strings.TrimPrefix(format, "table"), " ")
		format = strings.NewReplacer(`\t`, "\t", `\n`, "\n", " ", "\t").Replace(format)
	} else {
		format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	}
	if !strings.HasSuffix(format, "\n") {
		format += "\n"
	}
	t, err := template.New(name).Funcs(templateFuncs).Parse("{{range .}}" + format + "{{end -}}")
	if err != nil {
		return nil, fmt.Errorf("parse --format: %w", err)
	}
	return &report{tmpl: t, table: table, name: name, headers: hdrs}, nil
}

// renderList prints rows through --format, or through def when --format
// was not given. Headers are printed for the default and for a table
// format, unless noHeading.
func renderList(cmd *cobra.Command, w io.Writer, name, format, def string, hdr map[string]string, rows any, noHeading bool) error {
	f := format
	withHeaders := false
	if !cmd.Flags().Changed("format") {
		f = def
		withHeaders = !noHeading
	}
	rpt, err := parseReport(name, f, hdr)
	if err != nil {
		return err
	}
	if rpt.table && !noHeading {
		withHeaders = true
	}
	return rpt.render(w, rows, withHeaders)
}

func (r *report) render(w io.Writer, rows any, withHeaders bool) error {
	tw := tabwriter.NewWriter(w, 12, 2, 2, ' ', 0)
	var buf bytes.Buffer
	if withHeaders {
		if err := r.tmpl.Execute(&buf, []map[string]string{r.headers}); err != nil {
			return err
		}
	}
	if err := r.tmpl.Execute(&buf, rows); err != nil {
		return err
	}
	if _, err := tw.Write(buf.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

// inspectJSON renders values as Podman's inspect does: an array indented by
// five spaces.
func inspectJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "     ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// listJSON renders a list as Podman's ps and pod ps do: indented by two
// spaces, HTML characters unescaped.
func listJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}
