package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
)

// The first run with a published port starts `berth firewall-watch` for
// the network run directory, which puts the port back within a second
// after `nft flush ruleset`, with no berth command run, and exits once
// the last container is gone.
func TestPrivilegedWatcherAfterFlush(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "web", "-p", "8080:80", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	const page = "hello from berth\n"
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != page {
		t.Fatalf("page from outside: %q %v", got, err)
	}
	logPath := filepath.Join(p.run, "berth", "firewall-watch.log")
	var pid int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(p.run, "berth", "firewall-watch.pid"))
		log, _ := os.ReadFile(logPath)
		if pid, _ = strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && strings.Contains(string(log), "firewall watcher started") {
			break
		}
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if args := strings.Split(string(cmdline), "\x00"); len(args) < 4 || args[1] != "firewall-watch" || args[3] != p.run {
		t.Fatalf("watcher %d runs %q", pid, args)
	}
	if out, err := nettest.Run(p.host, 5*time.Second, "nft", "flush", "ruleset"); err != nil {
		t.Fatalf("nft flush ruleset: %v %s", err, out)
	}
	var got string
	var err error
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, err = httpGetOnce(p.outside, "198.18.0.1:8080", 200*time.Millisecond); strings.HasSuffix(got, page) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.HasSuffix(got, page) {
		t.Errorf("a second after the flush: %q %v", got, err)
	}
	var log []byte
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if log, _ = os.ReadFile(logPath); strings.Contains(string(log), "firewall rules restored") {
			break
		}
	}
	if !strings.Contains(string(log), "table inet berth missing") || !strings.Contains(string(log), "firewall rules restored") {
		t.Errorf("the watcher's log:\n%s", log)
	}
	p.mustB(t, "rm", "-f", "web")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
	}
	t.Errorf("the watcher %d still runs after the last container went", pid)
}
