package core_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// TestPrivilegedProfileScale is a measurement aid, not a pass/fail test: with
// BERTH_PROFILE=<dir> it sets up 1000 containers (2 published ports, DNS
// entries written) and writes per-call timings and a CPU profile of the last
// 200 setups to <dir>.
func TestPrivilegedProfileScale(t *testing.T) {
	out := os.Getenv("BERTH_PROFILE")
	if out == "" {
		t.Skip("measurement aid: set BERTH_PROFILE=<dir> to run")
	}
	// A stand-in DNS server: a sleeping process recorded in the pid file,
	// so setups signal it as they would a real one.
	fake := filepath.Join(t.TempDir(), "aardvark-dns")
	// It ignores SIGHUP (a plain sleep would die of it and be restarted
	// by every setup).
	os.WriteFile(fake, []byte("#!/bin/sh\ntrap '' HUP\nsleep 600 >/dev/null 2>&1 &\necho $! > \"$2/aardvark.pid\"\n"), 0o755)
	var last time.Time
	phases := map[string]time.Duration{}
	prev := ""
	tp := newTopo(t, nil, func(c *core.Config) {
		c.AardvarkBinary = fake
		c.FailPoint = func(step string) error {
			now := time.Now()
			if prev != "" {
				phases[prev] += now.Sub(last)
			}
			prev, last = step, now
			return nil
		}
	})
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(tp.cfgDir, "aardvark-dns", "aardvark.pid")); err == nil {
			var pid int
			fmt.Sscan(string(b), &pid)
			if pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	n := bridgeNet("prof", "bprof0", "198.19.0.0/16", "198.19.0.1")
	n.DNSEnabled = true
	const N = 1000
	durs := make([]time.Duration, N)
	var f *os.File
	for i := 0; i < N; i++ {
		if i == N-200 {
			f, _ = os.Create(filepath.Join(out, "cpu.pprof"))
			pprof.StartCPUProfile(f)
		}
		ns := nettest.NewNS(t, nettest.RandName("c"))
		o := opts(fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", i), n, fmt.Sprintf("198.19.%d.%d", 1+i/250, 2+i%250),
			network.PortMapping{ContainerPort: 80, HostPort: uint16(20000 + 2*i), Protocol: "tcp", Range: 1},
			network.PortMapping{ContainerPort: 443, HostPort: uint16(20001 + 2*i), Protocol: "tcp", Range: 1})
		if i == N-100 || i == 0 {
			for k := range phases {
				delete(phases, k)
			}
		}
		start := time.Now()
		prev, last = "start", start
		if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err != nil {
			t.Fatal(err)
		}
		durs[i] = time.Since(start)
		phases[prev] += time.Since(last)
		if i == 99 || i == N-1 {
			var b strings.Builder
			for k, v := range phases {
				fmt.Fprintf(&b, " %s=%v", k, v/100)
			}
			t.Logf("after %d: per-setup time by step (from the named step to the next):%s", i+1, b.String())
		}
	}
	pprof.StopCPUProfile()
	f.Close()
	med := func(d []time.Duration) time.Duration {
		c := append([]time.Duration(nil), d...)
		sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
		return c[len(c)/2]
	}
	t.Logf("setup median: first 100 %v, last 100 %v", med(durs[:100]), med(durs[N-100:]))
}
