package pasta_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMultiCallBackground: berth's multi-call binary called as pasta
// starts its background process as pasta too (it dispatches on argv[0]),
// so the message of a failed start is pasta's, not berth's CLI's.
func TestMultiCallBackground(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/berth")
	}
	dir := t.TempDir()
	berth := filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", berth, "github.com/berthnet/berth/cmd/berth").CombinedOutput(); err != nil {
		t.Fatalf("build cmd/berth: %v\n%s", err, out)
	}
	pasta := filepath.Join(dir, "pasta")
	if err := os.Symlink(berth, pasta); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-netns")
	out, err := exec.Command(pasta, "--config-net", "--quiet", "--pid", filepath.Join(dir, "pid"), "--netns", missing).CombinedOutput()
	if err == nil {
		t.Fatalf("pasta succeeded on a missing namespace:\n%s", out)
	}
	if want := "Couldn't open network namespace " + missing; !strings.HasPrefix(string(out), want) {
		t.Fatalf("output %q, want it to start with %q", out, want)
	}
}
