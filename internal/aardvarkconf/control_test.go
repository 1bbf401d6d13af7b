package aardvarkconf

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serveControl runs a control server on d whose reloads take delay and
// are counted.
func serveControl(t *testing.T, d Dir, delay time.Duration) *atomic.Int32 {
	t.Helper()
	ln, err := d.ListenControl()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var reloads atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go ServeControl(c, func() error {
				time.Sleep(delay)
				reloads.Add(1)
				return nil
			})
		}
	}()
	return &reloads
}

func TestRequestReloadWaitsForTheReload(t *testing.T) {
	// Deeper than a socket address can name directly (108 bytes).
	d := Dir{Path: filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))}
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	reloads := serveControl(t, d, 100*time.Millisecond)
	if st, err := os.Stat(d.ControlSocket()); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", st, err)
	}
	if err := d.RequestReload(os.Getpid(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if reloads.Load() != 1 {
		t.Errorf("RequestReload returned before the reload finished (%d reloads)", reloads.Load())
	}
	// A live socket is not taken over by a second server.
	if _, err := d.ListenControl(); !errors.Is(err, ErrControlInUse) {
		t.Errorf("second listener: %v, want %v", err, ErrControlInUse)
	}
}

func TestRequestReloadWithoutControl(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	start := time.Now()
	if err := d.RequestReload(os.Getpid(), 5*time.Second); !errors.Is(err, ErrNoControl) {
		t.Errorf("no socket: %v, want %v", err, ErrNoControl)
	}
	// A socket served by another process than the one in the pid file
	// (here: a PID that is not ours) is not trusted.
	serveControl(t, d, 0)
	if err := d.RequestReload(os.Getpid()+1, 5*time.Second); !errors.Is(err, ErrNoControl) {
		t.Errorf("socket of another process: %v, want %v", err, ErrNoControl)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v; without a control socket the answer must be immediate", time.Since(start))
	}
}

func TestListenControlReplacesStaleSocket(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	// A socket left by a server that was killed: nobody listens.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.ControlSocket(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	serveControl(t, d, 0)
	if err := d.RequestReload(os.Getpid(), 5*time.Second); err != nil {
		t.Errorf("after replacing a stale socket: %v", err)
	}
}

func TestControlSocketIsNotANetwork(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	serveControl(t, d, 0)
	if nets, err := d.Networks(); err != nil || len(nets) != 0 {
		t.Errorf("networks: %v %v", nets, err)
	}
}
