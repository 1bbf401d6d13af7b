package archtest

import (
	"fmt"
	"sort"
	"strings"
)

// LayoutHeading is the README heading of the package list.
const LayoutHeading = "## Layout"

// LayoutEntries returns the paths the README's Layout section lists: the
// section runs from LayoutHeading to the next "## " heading, and each
// entry is a line whose first word is a path relative to the module root
// ending in a slash (list markers and backquotes around it are allowed).
// ok is false when the README has no Layout section.
func LayoutEntries(readme string) (entries []string, ok bool) {
	in := false
	for _, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line) == LayoutHeading
			ok = ok || in
			continue
		}
		if !in {
			continue
		}
		f := strings.Fields(strings.TrimLeft(line, " \t-*"))
		if len(f) == 0 {
			continue
		}
		w := strings.Trim(f[0], "`")
		if strings.HasSuffix(w, "/") && !strings.HasPrefix(w, "/") && w != "/" {
			entries = append(entries, strings.TrimSuffix(w, "/"))
		}
	}
	return entries, ok
}

// LayoutProblems returns what is wrong with the README's Layout section:
// a package of pkgs (paths relative to the module root) it does not list,
// with the line to add, and an entry that names no directory of the
// module (dirExists answers for a relative path).
func LayoutProblems(readme string, pkgs []string, dirExists func(string) bool) []string {
	entries, ok := LayoutEntries(readme)
	if !ok {
		return []string{fmt.Sprintf("README.md has no %q section: add one with a line per package", LayoutHeading)}
	}
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e] = true
	}
	var out []string
	for _, p := range pkgs {
		if !listed[p] {
			out = append(out, fmt.Sprintf("README.md's Layout section does not list %s: add the line %q", p, p+"/  <what it holds>"))
		}
	}
	for _, e := range entries {
		if !dirExists(e) {
			out = append(out, fmt.Sprintf("README.md's Layout section lists %s/, which does not exist: remove or correct that line", e))
		}
	}
	sort.Strings(out)
	return out
}
