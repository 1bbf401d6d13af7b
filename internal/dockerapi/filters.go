package dockerapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Filters is Docker's `filters` query parameter: each key with its
// accepted values.
type Filters map[string][]string

// ParseFilters reads the JSON of a `filters` parameter in either of the
// shapes Docker clients send: {"label":{"a=b":true}} (current) or
// {"label":["a=b"]} (API < 1.22). Keys must be in valid.
func ParseFilters(raw string, valid ...string) (Filters, error) {
	f := Filters{}
	if strings.TrimSpace(raw) == "" {
		return f, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("filters: not a JSON object: %v: %w", err, ErrInvalid)
	}
	for k, v := range m {
		if !contains(valid, k) {
			return nil, fmt.Errorf("invalid filter '%s' (valid: %s): %w", k, strings.Join(valid, ", "), ErrInvalid)
		}
		var set map[string]bool
		if err := json.Unmarshal(v, &set); err == nil {
			for val, on := range set {
				if on {
					f[k] = append(f[k], val)
				}
			}
			sort.Strings(f[k])
			continue
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, fmt.Errorf("filters: values of %q must be an object of booleans or a list of strings: %w", k, ErrInvalid)
		}
		f[k] = append(f[k], list...)
	}
	return f, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// matchLabels reports whether labels satisfy every "key" or "key=value"
// in want.
func matchLabels(labels map[string]string, want []string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}
