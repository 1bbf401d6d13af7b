// Package reaper deletes retired links in the background. Deleting a link
// makes the kernel wait for RCU grace periods (15-25 ms per link here,
// whatever berth does), so a teardown that only has to free a link's name
// and take it out of service can retire it (down, off its bridge, renamed
// to RetiredName) and hand the deletion to a short-lived child process: the
// same executable run with Flag, the link's namespace on descriptor 3.
// Links whose reaper died are found by their names (IsRetired) and removed
// by garbage collection.
package reaper

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
)

// Flag is the first argument of a reaper child: EXE Flag INDEX NAME.
const Flag = "--berth-reap-link"

// prefix starts the names of retired links: 7 characters and up to 8 hex
// digits of the link's index fit in a link name.
const prefix = "brtgone"

// RetiredName is the name a retired link with that index gets; an index is
// unique in its namespace while the link exists, so the name is free.
func RetiredName(index int) string { return fmt.Sprintf("%s%x", prefix, index) }

// IsRetired reports whether a link name is a retired link's.
func IsRetired(name string) bool {
	hex, ok := strings.CutPrefix(name, prefix)
	if !ok || len(hex) < 1 || len(hex) > 8 {
		return false
	}
	for _, r := range hex {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// Retire takes l out of service at once: down, off its master, and renamed
// to RetiredName so its name is free for a new link.
func Retire(l link.Link) error {
	if err := l.SetDown(); err != nil {
		return fmt.Errorf("retire: %w", err)
	}
	if l.MasterIndex != 0 {
		if err := l.SetNoMaster(); err != nil {
			return fmt.Errorf("retire: %w", err)
		}
	}
	if err := l.Rename(RetiredName(l.Index)); err != nil {
		return fmt.Errorf("retire: %w", err)
	}
	return nil
}

// Start deletes the retired link with that index in ns (nil: the caller's
// namespace) from a child process it does not wait for.
func Start(ns *netns.NetNS, index int) error {
	if !enabled.Load() {
		return errors.New("reaper: this program's main does not run reaper.Main")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("reaper: %w", err)
	}
	cmd := exec.Command(exe, Flag, strconv.Itoa(index), RetiredName(index))
	cmd.Args[0] = os.Args[0]
	cmd.Env = []string{}
	// Standard streams are /dev/null: a runtime that reads the plugin's
	// output until EOF must not wait for the child.
	if ns != nil {
		fd, err := unix.Dup(ns.Fd())
		if err != nil {
			return fmt.Errorf("reaper: %w", err)
		}
		f := os.NewFile(uintptr(fd), "netns")
		defer f.Close()
		cmd.ExtraFiles = []*os.File{f}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("reaper: %w", err)
	}
	return cmd.Process.Release()
}

// enabled records that this program's main runs Main first, so the
// executable Start runs will act as a reaper; programs that do not (a test
// binary, a program embedding berth) get an error from Start and delete
// their links themselves.
var enabled atomic.Bool

// Main runs the reaper when args (os.Args) ask for it, and reports whether
// they did and the exit code. Otherwise it enables Start in this process:
// call it first thing in main.
func Main(args []string) (bool, int) {
	if len(args) != 4 || args[1] != Flag {
		enabled.Store(true)
		return false, 0
	}
	if err := reap(args[2], args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "berth reaper:", err)
		return true, 1
	}
	return true, 0
}

func reap(index, name string) error {
	idx, err := strconv.Atoi(index)
	if err != nil || !IsRetired(name) || name != RetiredName(idx) {
		return fmt.Errorf("bad arguments %q %q", index, name)
	}
	var ns *netns.NetNS
	if _, err := os.Stat("/proc/self/fd/3"); err == nil {
		if ns, err = netns.Open("/proc/self/fd/3"); err != nil {
			return err
		}
		defer ns.Close()
	}
	h, err := link.NewHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByIndex(idx)
	if errors.Is(err, link.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Name != name {
		return nil // not ours any more
	}
	return l.Delete()
}
