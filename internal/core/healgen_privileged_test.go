package core_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	fwnft "github.com/berthnet/berth/internal/firewall/nftables"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

const skippedMsg = "firewall unchanged since berth's last change; check skipped"

// While the ruleset stays at the generation berth's last call left, the
// next call skips the full firewall check; after `nft flush ruleset`, and
// after a flush that lands between berth's commit and its reading of the
// generation, the next setup checks in full and restores every
// container's published port.
func TestPrivilegedHealSkipsTheCheckOnlyWhileNobodyElseChangedTheRuleset(t *testing.T) {
	var d *fwnft.Driver
	logs := &nettest.LogBuffer{}
	tp := newTopo(t, func(host *nettest.NS) firewall.Driver {
		d = fwnft.New(host.Fd())
		return d
	}, func(c *core.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	n := bridgeNet("hgen", "brhgen0", "198.19.16.0/24", "198.19.16.1")
	port := network.PortMapping{ContainerPort: 80, HostPort: 8090, Protocol: "tcp", Range: 1}
	ctr, _ := tp.container(t, opts("g1", "hgen1", n, "198.19.16.2", port))
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "one")
	reachable := func(when string, want bool) {
		t.Helper()
		got, err := nettest.FetchWithin(tp.outside, "tcp4", "198.18.0.1:8090", 2*time.Second)
		if ok := err == nil && got == "one"; ok != want {
			t.Fatalf("%s: published port reachable = %v (%q, %v), want %v", when, ok, got, err, want)
		}
	}
	flush := func() {
		t.Helper()
		if out, err := nettest.Run(tp.host, 5*time.Second, "nft", "flush", "ruleset"); err != nil {
			t.Fatalf("nft flush ruleset: %v %s", err, out)
		}
	}
	// setup sets up (and registers the teardown of) one more container,
	// with a port of its own (a commit), and reports whether its call
	// skipped the check.
	i := 2
	setup := func() bool {
		t.Helper()
		logs.Take()
		own := network.PortMapping{ContainerPort: 80, HostPort: uint16(8090 + i), Protocol: "tcp", Range: 1}
		tp.container(t, opts(fmt.Sprint("g", i), fmt.Sprint("hgen", i), n, fmt.Sprint("198.19.16.", i+1), own))
		i++
		return strings.Contains(logs.Take(), skippedMsg)
	}
	reachable("after the first setup", true)

	// (a) Nothing changed since the first setup: the check is skipped,
	// and again after a setup that skipped it.
	if !setup() {
		t.Fatal("the second setup did not skip the check")
	}
	if !setup() {
		t.Fatal("the third setup did not skip the check")
	}
	reachable("after setups that skipped the check", true)

	// (b) A flushed ruleset: the next setup checks and restores.
	flush()
	reachable("after nft flush ruleset", false)
	if setup() {
		t.Fatal("the setup after a flush skipped the check")
	}
	reachable("after the setup that followed the flush", true)
	if !setup() {
		t.Fatal("the setup after the repairing one did not skip the check")
	}

	// (b') A flush between berth's commit and its reading of the
	// generation: the setup does not record it, and the next one checks
	// and restores.
	flushed := false
	d.AfterCommit(func() {
		if !flushed {
			flushed = true
			flush()
		}
	})
	setup()
	d.AfterCommit(nil)
	if !flushed {
		t.Fatal("the setup made no commit")
	}
	reachable("after the flush that followed berth's commit", false)
	if setup() {
		t.Fatal("the setup after a flush that followed berth's commit skipped the check")
	}
	reachable("after the next setup", true)
}
