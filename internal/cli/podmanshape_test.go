package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// jsonKind is the JSON type of v as Podman's users see it in jq.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// shapeDiff lists where got lacks a key of want or holds another JSON type
// (null matches anything: Podman itself prints null for empty lists and
// maps). Objects under the keys in descend are compared key by key, the
// first elements of arrays likewise; other values only by type.
func shapeDiff(path string, want, got any, descend func(path string) bool) []string {
	wk, gk := jsonKind(want), jsonKind(got)
	if wk == "null" || gk == "null" {
		return nil
	}
	if wk != gk {
		return []string{fmt.Sprintf("%s: %s, want %s", path, gk, wk)}
	}
	if !descend(path) {
		return nil
	}
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			out = append(out, shapeDiff(path+"."+k, w[k], gv, descend)...)
		}
	case []any:
		g := got.([]any)
		if len(w) > 0 && len(g) > 0 {
			out = append(out, shapeDiff(path+"[]", w[0], g[0], descend)...)
		}
	}
	return out
}

// everywhere descends into every object.
func everywhere(string) bool { return true }

// only descends into the listed paths (and the root).
func only(paths ...string) func(string) bool {
	return func(p string) bool {
		if p == "" {
			return true
		}
		for _, q := range paths {
			if p == q {
				return true
			}
		}
		return false
	}
}

func mustJSON(t *testing.T, what, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, s)
	}
	return v
}

func TestShapeDiff(t *testing.T) {
	want := mustJSON(t, "want", `{"Id":"x","Names":["a"],"Ports":[{"host_port":1}],"Labels":null,"Created":1,"State":{"Pid":1}}`)
	for _, c := range []struct {
		got     string
		descend func(string) bool
		diff    string
	}{
		{`{"Id":"y","Names":["b"],"Ports":[{"host_port":2}],"Labels":{"a":"b"},"Created":2,"State":{"Pid":0},"Extra":1}`, everywhere, ""},
		{`{"Id":"y","Names":"b","Ports":[],"Labels":null,"Created":"2","State":{}}`, everywhere, ".Created: string, want number; .Names: string, want array; .State.Pid: missing"},
		{`{"Id":"y","Names":["b"],"Ports":[{"host_port":"2"}],"Created":2,"State":{}}`, only(".Ports", ".Ports[]"), ".Labels: missing; .Ports[].host_port: string, want number"},
	} {
		d := strings.Join(shapeDiff("", want, mustJSON(t, "got", c.got), c.descend), "; ")
		if d != c.diff {
			t.Errorf("%s:\n got  %s\n want %s", c.got, d, c.diff)
		}
	}
}
