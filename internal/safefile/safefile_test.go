package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 101)), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(ok, 100); err != nil || string(b) != "hello" {
		t.Errorf("Read(ok) = %q, %v", b, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for path, want := range map[string]error{big: ErrTooLarge, fifo: ErrNotRegular, zero: ErrNotRegular, dir: ErrNotRegular} {
			_, err := Read(path, 100)
			if !errors.Is(err, want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Read(%s) = %v, want %v naming the path", path, err, want)
			}
		}
		if _, err := Read(filepath.Join(dir, "missing"), 100); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Read(missing) = %v, want ErrNotExist", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Read blocked (on the FIFO?)")
	}
}

// Links inside a root resolve inside it: an absolute link or one full of
// ".." reads the root's file, never the host's.
func TestReadInRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "real"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "real/passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"abs": "/real/passwd", "dots": "../../../../../real/passwd"} {
		if err := os.Symlink(target, filepath.Join(root, "etc", name)); err != nil {
			t.Fatal(err)
		}
		b, err := ReadInRoot(root, "etc/"+name, 100)
		if err != nil || !strings.HasPrefix(string(b), "root:x:0:0") {
			t.Errorf("ReadInRoot(etc/%s -> %s) = %q, %v", name, target, b, err)
		}
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(root, "etc/host")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInRoot(root, "etc/host", 100); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a link to the host's /etc/hostname: %v, want not found inside the root", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(root, "etc/zero")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInRoot(root, "etc/zero", 100); err == nil {
		t.Error("a link to /dev/zero was read")
	}
}
