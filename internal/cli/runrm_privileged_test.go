package cli

import (
	"strings"
	"testing"
	"time"
)

// TestPrivilegedRunRmQuick: a --rm container that exits at once may be
// removed by its monitor before `run` has finished starting it; run still
// succeeds (foreground: the container's exit code; -d: the ID) and nothing
// is left. The race is timing-dependent (it showed under load in
// test/acceptance/guide.sh), hence many rounds; --network none keeps the
// monitor's side short, which makes it likelier.
func TestPrivilegedRunRmQuick(t *testing.T) {
	p := newETopo(t)
	for i := 0; i < 10; i++ {
		if out, err := p.b("run", "--rm", "--network", "none", "--rootfs", p.rootfs, "true"); err != nil || out != "" {
			t.Fatalf("round %d: run --rm true: %v %q", i, err, out)
		}
		if out, err := p.b("run", "--rm", "--rootfs", p.rootfs, "sh", "-c", "exit 4"); exitCode(err) != 4 {
			t.Fatalf("round %d: run --rm exit 4: %v %q", i, err, out)
		}
		if out, err := p.b("run", "-d", "--rm", "--network", "none", "--rootfs", p.rootfs, "true"); err != nil || len(strings.TrimSpace(out)) != 64 {
			t.Fatalf("round %d: run -d --rm true: %v %q", i, err, out)
		}
	}
	// The -d ones may still be going.
	for i := 0; i < 50; i++ {
		if out := p.mustB(t, "ps", "-a", "-q"); out == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("containers left: %s", p.mustB(t, "ps", "-a"))
}
