package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Report is the doctor's answer: what it looked at, what it found, and
// what it could not read.
type Report struct {
	// Healthy is true when there are no findings.
	Healthy  bool      `json:"healthy"`
	Networks []string  `json:"networks"`
	Findings []Finding `json:"findings"`
	// Notes are parts of the host that could not be read (their checks
	// were skipped) and other remarks.
	Notes []string `json:"notes"`
}

// NewReport builds the report of the networks checked and their findings.
func NewReport(networks []string, findings []Finding, notes []string) Report {
	if networks == nil {
		networks = []string{}
	}
	if findings == nil {
		findings = []Finding{}
	}
	if notes == nil {
		notes = []string{}
	}
	return Report{Healthy: len(findings) == 0, Networks: networks, Findings: findings, Notes: notes}
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText writes the report for people: findings grouped per network,
// each with why and the fix, then the notes and a summary line.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, n := range r.Networks {
		var fs []Finding
		for _, f := range r.Findings {
			if f.Network == n {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			fmt.Fprintf(&b, "network %s: ok\n", n)
			continue
		}
		fmt.Fprintf(&b, "network %s: %d problem%s\n", n, len(fs), plural(len(fs)))
		for _, f := range fs {
			who := ""
			if f.Container != "" {
				who = " [container " + containerLabel(f) + "]"
			}
			fmt.Fprintf(&b, "  %s %s%s: %s\n", strings.ToUpper(string(f.Severity)), f.ID, who, f.What)
			fmt.Fprintf(&b, "    why: %s\n", f.Why)
			fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	switch {
	case len(r.Networks) == 0:
		b.WriteString("No network has containers attached: nothing to check.\n")
	case r.Healthy:
		fmt.Fprintf(&b, "No problems found on %d network%s.\n", len(r.Networks), plural(len(r.Networks)))
	default:
		fmt.Fprintf(&b, "%d problem%s found.\n", len(r.Findings), plural(len(r.Findings)))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func containerLabel(f Finding) string {
	id := f.Container
	if len(id) > 12 {
		id = id[:12]
	}
	if f.ContainerName != "" && f.ContainerName != f.Container {
		return f.ContainerName + " " + id
	}
	return id
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
