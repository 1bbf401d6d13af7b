// Package sysctl reads and writes kernel parameters under /proc/sys, inside a
// chosen network namespace (the net.* tree is per namespace).
package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berthnet/berth/internal/netns"
)

// Setting is one key (dotted, e.g. "net.ipv4.ip_forward") and its value.
type Setting struct {
	Key   string
	Value string
	// Optional settings are skipped when the key does not exist or the
	// file is read-only (IPv6 disabled, a read-only /proc/sys).
	Optional bool
}

// Path maps a dotted key to its file. Interface names may contain dots, so
// callers that build keys for an interface use Key.
func Path(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// Key builds a key whose parts are taken literally (dots allowed inside).
func Key(parts ...string) string {
	return strings.Join(parts, "\x00")
}

func keyPath(key string) string {
	if strings.Contains(key, "\x00") {
		return filepath.Join(append([]string{"/proc/sys"}, strings.Split(key, "\x00")...)...)
	}
	return Path(key)
}

// Apply sets the settings inside ns (nil: the calling thread's namespace).
// A setting whose value already holds is left alone, so that Apply works on
// a read-only /proc/sys (a container) when nothing needs to change. It
// writes first and reads only when the write fails: one open per setting in
// the common case, as the kernel ignores a write of the value that holds.
func Apply(ns *netns.NetNS, settings []Setting) error {
	do := func() error {
		for _, s := range settings {
			if err := write(s); err != nil {
				return err
			}
		}
		return nil
	}
	if ns == nil {
		return do()
	}
	return ns.Do(do)
}

func write(s Setting) error {
	path := keyPath(s.Key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, err = f.WriteString(s.Value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil || holds(path, s.Value) {
		return nil
	}
	if s.Optional && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) {
		return nil
	}
	return &WriteError{Key: name(s.Key), Value: s.Value, Err: err}
}

// holds reports whether the file at path reads as value.
func holds(path, value string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == strings.TrimSpace(value)
}

// WriteError is a setting that could not be written (and did not already
// hold). Front-ends that must word it their own way take it apart with
// errors.As.
type WriteError struct {
	// Key is the dotted key, e.g. "net.ipv4.ip_forward".
	Key   string
	Value string
	Err   error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("write sysctl %s=%s: %v", e.Key, e.Value, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// Get reads a value inside ns (nil: the calling thread's namespace).
func Get(ns *netns.NetNS, key string) (string, error) {
	var v string
	do := func() error {
		b, err := os.ReadFile(keyPath(key))
		v = strings.TrimSpace(string(b))
		return err
	}
	var err error
	if ns == nil {
		err = do()
	} else {
		err = ns.Do(do)
	}
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", name(key), err)
	}
	return v, nil
}

func name(key string) string { return strings.ReplaceAll(key, "\x00", ".") }
