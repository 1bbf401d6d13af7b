// Package netns is the only place in berth that switches a thread between
// network namespaces. Everything else binds sockets to a namespace through a
// file descriptor (netlink.NewHandleAt, nftables.WithNetNSFd) and never moves
// a thread.
//
// Do runs a function on a fresh, locked OS thread inside a namespace; if
// switching back fails, the thread stays locked and the Go runtime discards it
// when the goroutine ends, so no goroutine ever runs in the wrong namespace.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// NetNS is an open network namespace.
type NetNS struct {
	f    *os.File
	path string
}

// Open opens the namespace at path (a /run/netns file or /proc/PID/ns/net).
func Open(path string) (*NetNS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", path, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat namespace %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
		f.Close()
		return nil, fmt.Errorf("%s is not a network namespace", path)
	}
	return &NetNS{f: f, path: path}, nil
}

// Current opens the namespace of the calling thread.
func Current() (*NetNS, error) {
	return Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
}

// Fd returns the namespace file descriptor, valid until Close.
func (n *NetNS) Fd() int { return int(n.f.Fd()) }

// Path returns the path the namespace was opened from.
func (n *NetNS) Path() string { return n.path }

// Close releases the descriptor.
func (n *NetNS) Close() error { return n.f.Close() }

// Inode returns the namespace's inode number, which identifies it.
func (n *NetNS) Inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(n.Fd(), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// Do runs fn on a locked OS thread that has joined the namespace.
func (n *NetNS) Do(fn func() error) error {
	return doIn(n.Fd(), fn)
}

// DoFd is Do for a namespace given by its descriptor.
func DoFd(fd int, fn func() error) error { return doIn(fd, fn) }

func doIn(fd int, fn func() error) error {
	return onThread(func() error {
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		return nil
	}, fn)
}

// DoDiscard runs fn on a fresh locked OS thread that has joined the
// namespace, and lets that thread die with its goroutine instead of
// switching it back. Use it where a process may enter the namespace but not
// return: a process inside a user namespace may join the network namespaces
// that user namespace owns, but not the host's namespace it came from.
func (n *NetNS) DoDiscard(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with the goroutine.
		if err := unix.Setns(n.Fd(), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// onThread runs enter and then fn on a fresh locked OS thread, and puts the
// thread back into its original namespace afterwards. If that fails (as it
// does for root of a user namespace that came from the host's namespace),
// the thread stays locked and the Go runtime discards it with the
// goroutine; fn's result stands.
func onThread(enter, fn func() error) error {
	var (
		err error
		wg  sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		orig, e := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if e != nil {
			err = fmt.Errorf("open current namespace: %w", e)
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		if e := enter(); e != nil {
			err = e
			runtime.UnlockOSThread()
			return
		}
		err = fn()
		if e := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); e != nil {
			// The thread stays locked and dies with the goroutine. Not an
			// error: inside a user namespace a process may enter the
			// namespaces it owns but not return to the host's.
			return
		}
		runtime.UnlockOSThread()
	}()
	wg.Wait()
	return err
}

// NewPinned creates a new network namespace and bind-mounts it at path,
// the way `ip netns add` does. The calling thread does not move.
func NewPinned(path string) (*NetNS, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create namespace directory: %w", err)
	}
	fd, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return nil, fmt.Errorf("create namespace file: %w", err)
	}
	fd.Close()
	mountErr := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		return nil
	}, func() error {
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount namespace: %w", err)
		}
		return nil
	})
	if mountErr != nil {
		os.Remove(path)
		return nil, mountErr
	}
	return Open(path)
}

// Unpin unmounts and removes a namespace created by NewPinned.
func Unpin(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove namespace %s: %w", path, err)
	}
	return nil
}

// Worker is one OS thread that stays inside a namespace and runs functions
// there (sockets opened on it belong to the namespace). Its thread never
// switches back: it exits when the worker is closed, which suits a process
// in a user namespace that may not return to the namespace it came from.
type Worker struct {
	req chan func()
}

// NewWorker starts a worker inside the namespace at path and runs setup
// on it first; a setup error ends the worker.
func NewWorker(path string, setup func() error) (*Worker, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", path, err)
	}
	w := &Worker{req: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			err = fmt.Errorf("enter namespace %s: %w", path, err)
		} else if setup != nil {
			err = setup()
		}
		ready <- err
		if err != nil {
			return
		}
		for fn := range w.req {
			fn()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return w, nil
}

// Do runs fn on the worker's thread and waits for it.
func (w *Worker) Do(fn func()) {
	done := make(chan struct{})
	w.req <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// Close ends the worker; no Do may follow or run concurrently.
func (w *Worker) Close() { close(w.req) }
