package runopts

import (
	"bufio"
	"fmt"
	"strings"
)

const whiteSpaces = " \t"

// ParseEnvFile parses the content of an --env-file as Podman does: one
// KEY=VALUE per line (the value taken as is), blank lines and lines
// starting with # skipped, leading white space trimmed; KEY alone takes
// the caller's value when it has one (lookup), KEY* every caller
// variable starting with KEY. The result is KEY=VALUE entries in order,
// a later KEY replacing an earlier one.
func ParseEnvFile(content string, environ []string) ([]string, error) {
	var out []string
	set := func(k, v string) {
		e := k + "=" + v
		for i, o := range out {
			if ok, _, _ := strings.Cut(o, "="); ok == k {
				out[i] = e
				return
			}
		}
		out = append(out, e)
	}
	sc := bufio.NewScanner(strings.NewReader(content))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), whiteSpaces)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, hasValue := strings.Cut(line, "=")
		if name == "" {
			return nil, fmt.Errorf("invalid environment variable: %q", line)
		}
		if strings.ContainsAny(name, whiteSpaces) {
			return nil, fmt.Errorf("name %q has white spaces, poorly formatted name", name)
		}
		if hasValue {
			set(name, value)
			continue
		}
		prefix, glob := strings.CutSuffix(name, "*")
		for _, e := range environ {
			k, v, ok := strings.Cut(e, "=")
			if ok && (k == name || glob && strings.HasPrefix(k, prefix)) {
				set(k, v)
			}
		}
	}
	return out, sc.Err()
}

// ParseLabelFile parses the content of a --label-file: one KEY[=VALUE]
// per line, blank lines and lines starting with # skipped.
func ParseLabelFile(content string) (map[string]string, error) {
	labels := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(content))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid label %q: want KEY=VALUE", line)
		}
		labels[k] = v
	}
	return labels, sc.Err()
}
