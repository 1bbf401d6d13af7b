package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/runopts"
)

// An image whose /etc/passwd is a link to a device, or to the host's
// files, neither hangs the spec nor reads the host: the user is looked up
// in the image's own files only.
func TestSpecReadsTheImagesPasswdOnly(t *testing.T) {
	e := newTestEngine(t)
	netm, _ := runopts.ParseNetworks([]string{"none"})
	for _, target := range []string{"/dev/zero", "/etc/passwd"} {
		rootfs := t.TempDir()
		if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(rootfs, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		c, _, err := e.Create(CreateOptions{Name: "", Rootfs: rootfs, Args: []string{"sh"}, Net: netm, User: "root"})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := e.spec(c, rootfs, c.State, nil); done <- err }()
		select {
		case err := <-done:
			// The host's /etc/passwd has root; the image has no passwd.
			if err == nil || !strings.Contains(err.Error(), "root") {
				t.Errorf("passwd -> %s: spec error %v, want user root not found in the image", target, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("passwd -> %s: spec blocked", target)
		}
	}
}
