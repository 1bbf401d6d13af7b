package change

import (
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzApply: an instruction is applied or rejected with ErrInvalid,
// never a panic; applying it twice gives the same config as once for
// everything but ENV and LABEL order (which replace by key anyway).
func FuzzApply(f *testing.F) {
	for _, s := range []string{`CMD ["a","b"]`, "CMD a b", "ENTRYPOINT=/x", "ENV A=1 B=2", "ENV A 1", `LABEL "k"="v w"`,
		"EXPOSE 80/udp 8080", "STOPSIGNAL SIGTERM", "USER 1:2", "WORKDIR /a/../b", "VOLUME [\"/v\"]", "FROM x", "CMD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var once, twice v1.Config
		err := Apply(&once, []string{s})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Apply(%q): %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if err := Apply(&twice, []string{s, s}); err != nil {
			t.Fatalf("Apply(%q) twice: %v", s, err)
		}
		if len(once.Env) != len(twice.Env) || len(once.Labels) != len(twice.Labels) || len(once.ExposedPorts) != len(twice.ExposedPorts) {
			t.Fatalf("Apply(%q) is not idempotent: %+v vs %+v", s, once, twice)
		}
	})
}
