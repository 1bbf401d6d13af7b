package ref

import (
	"errors"
	"testing"
)

// FuzzParse: what Parse accepts is normalised and stable (its String
// parses to itself), and what it rejects wraps ErrInvalid.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"busybox", "quay.io/a/b:1", "127.0.0.1:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"localhost/banner", "[::1]:5000/a", "Bad/Name", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		again, err := Parse(r.String())
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v, %v", s, r, r.String(), again, err)
		}
		if r.Domain == "" || r.Path == "" || (r.Tag == "" && r.Digest == "") {
			t.Fatalf("Parse(%q) = %+v: incomplete", s, r)
		}
		if l, err := ParseLocal(s); err != nil || (IsShort(s) && l.Domain != "localhost") {
			t.Fatalf("ParseLocal(%q) = %+v, %v", s, l, err)
		}
	})
}
