package sysctl

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// holds compares a file's value, ignoring the newline /proc/sys adds.
func TestHolds(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ip_forward")
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !holds(p, "1") || holds(p, "0") || holds(p+"x", "1") {
		t.Errorf("holds: %v %v %v", holds(p, "1"), holds(p, "0"), holds(p+"x", "1"))
	}
}

// A failed write names the key and value and keeps the kernel's error.
func TestWriteError(t *testing.T) {
	err := error(&WriteError{Key: "net.ipv4.ip_forward", Value: "1", Err: syscall.EROFS})
	var we *WriteError
	if err.Error() != "write sysctl net.ipv4.ip_forward=1: read-only file system" || !errors.Is(err, syscall.EROFS) || !errors.As(err, &we) {
		t.Errorf("%v", err)
	}
}
