// Package imagetest builds small images for tests from Debian's
// busybox-static: a root filesystem tarball with /bin/busybox and its
// applet symlinks, and images imported from it into an image.Store.
package imagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/image"
)

// Applets are the busybox applets linked in /bin.
var Applets = []string{
	"sh", "ash", "httpd", "echo", "sleep", "cat", "ls", "ip", "ping", "ping6", "wget", "nc",
	"hostname", "true", "false", "env", "id", "ps", "kill", "mkdir", "rm", "grep", "sed",
	"nslookup", "ifconfig", "route", "printf", "test", "[", "head", "tail", "touch", "uname",
	"mount", "umount", "chmod", "cp", "mv", "ln", "date", "seq", "wc", "awk", "tr", "cut",
	"sort", "udhcpc", "arp", "netstat", "traceroute", "telnet", "vi", "timeout", "dd",
}

// BusyboxPath returns the statically linked busybox of Debian's
// busybox-static package; the test is skipped when there is none.
func BusyboxPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if static(p) {
			return p
		}
	}
	t.Skip("no statically linked busybox: apt-get install busybox-static")
	return ""
}

// static reports whether p is an ELF executable without an interpreter.
func static(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// File is an extra file in a root filesystem tarball.
type File struct {
	Mode    int64
	Content string
}

// WriteRootfs writes a root filesystem tarball to w: /bin/busybox (read
// from busybox), the applet symlinks, /etc/passwd and /etc/group, empty
// /dev /proc /sys /tmp /root, and extra files (path → content; parent
// directories are created).
func WriteRootfs(w io.Writer, busybox string, extra map[string]File) error {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	mt := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	var mkdir func(string, int64) error
	mkdir = func(d string, mode int64) error {
		if d == "." || d == "" || dirs[d] {
			return nil
		}
		if err := mkdir(filepath.Dir(d), 0o755); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: mt})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := mkdir(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mt}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"bin", "dev", "proc", "sys", "etc", "root", "run", "var"} {
		if err := mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := mkdir("tmp", 0o1777); err != nil {
		return err
	}
	if err := file("bin/busybox", 0o755, bin); err != nil {
		return err
	}
	for _, a := range Applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: mt}); err != nil {
			return err
		}
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")); err != nil {
		return err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")); err != nil {
		return err
	}
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := extra[n]
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := file(filepath.Clean(n), mode, []byte(f.Content)); err != nil {
			return err
		}
	}
	return tw.Close()
}

// BusyboxRootfsTar writes the busybox root filesystem tarball into the
// test's temporary directory and returns its path.
func BusyboxRootfsTar(t testing.TB) string {
	t.Helper()
	return RootfsTar(t, nil)
}

// RootfsTar is BusyboxRootfsTar with extra files.
func RootfsTar(t testing.TB, extra map[string]File) string {
	t.Helper()
	bb := BusyboxPath(t)
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteRootfs(f, bb, extra); err != nil {
		t.Fatal(err)
	}
	return p
}

// BusyboxImage imports the busybox root filesystem into s as
// localhost/busybox:latest with CMD ["sh"] and PATH set.
func BusyboxImage(t testing.TB, s *image.Store) *image.Image {
	t.Helper()
	return Import(t, s, "localhost/busybox:latest", nil,
		`ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, `CMD ["sh"]`)
}

// BannerImage imports the README demo's "banner" image into s: busybox
// httpd serving /www/index.html ("Hello from berth") on port 80, as
// scripts/mkbanner.sh builds it.
func BannerImage(t testing.TB, s *image.Store) *image.Image {
	t.Helper()
	return Import(t, s, "banner", map[string]File{"www/index.html": {Content: "Hello from berth\n"}},
		`CMD ["httpd","-f","-v","-p","80","-h","/www"]`, `EXPOSE 80`)
}

// Import imports a busybox root filesystem with extra files into s under
// name, applying changes.
func Import(t testing.TB, s *image.Store, name string, extra map[string]File, changes ...string) *image.Image {
	t.Helper()
	bb := BusyboxPath(t)
	var buf bytes.Buffer
	if err := WriteRootfs(&buf, bb, extra); err != nil {
		t.Fatal(err)
	}
	img, err := s.Import(context.Background(), &buf, image.ImportOptions{Reference: name, Changes: changes})
	if err != nil {
		t.Fatalf("import %s: %v", name, err)
	}
	return img
}
