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
