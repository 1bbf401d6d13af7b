package dhcpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/berthnet/berth/internal/dhcp"
	proxypb "github.com/berthnet/berth/internal/dhcpproxy/proto"
)

func testLease() *dhcp.Lease {
	return &dhcp.Lease{
		Addr:     netip.MustParsePrefix("198.18.1.100/24"),
		Gateways: []netip.Addr{netip.MustParseAddr("198.18.1.1")},
		DNS:      []netip.Addr{netip.MustParseAddr("198.18.1.53")},
		Domain:   "lan.test",
		Server:   netip.MustParseAddr("198.18.1.1"),
		Duration: 120 * time.Second, T1: 60 * time.Second, T2: 105 * time.Second,
		Acquired: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		ACK:      []byte{1, 2, 3},
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s := store{path: filepath.Join(t.TempDir(), LeaseFile)}
	got, err := s.load()
	if err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v %v", got, err)
	}
	want := map[string]*record{
		"02:00:00:00:00:01": {ContainerIface: "eth0", MAC: "02:00:00:00:00:01", NSPath: "/run/netns/a", Metric: 99, Lease: testLease()},
		"02:00:00:00:00:02": {ContainerIface: "eth1", MAC: "02:00:00:00:00:02", NSPath: "/run/netns/b"},
	}
	if err := s.save(want); err != nil {
		t.Fatal(err)
	}
	got, err = s.load()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	// No temporary files stay behind.
	ents, _ := os.ReadDir(filepath.Dir(s.path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d files", len(ents))
	}
	os.WriteFile(s.path, []byte("{not json"), 0o600)
	if _, err := s.load(); err == nil || !strings.Contains(err.Error(), "parse lease file") {
		t.Errorf("damaged file: %v", err)
	}
}

func TestToProto(t *testing.T) {
	got := toProto(testLease(), "02:00:00:00:00:01", "web")
	want := &proxypb.Lease{
		T1: 60, T2: 105, LeaseTime: 120, DomainName: "lan.test", MacAddress: "02:00:00:00:00:01",
		Yiaddr: "198.18.1.100", SrvId: "198.18.1.1", SubnetMask: "255.255.255.0",
		DnsServers: []string{"198.18.1.53"}, Gateways: []string{"198.18.1.1"}, NtpServers: []string{}, HostName: "web",
	}
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestDialNotRunning(t *testing.T) {
	p := filepath.Join(t.TempDir(), SocketName)
	_, err := Dial(p)
	want := "dhcp proxy is not running: connect " + p + ": no such file or directory"
	if err == nil || err.Error() != want || !errors.Is(err, ErrNotRunning) {
		t.Errorf("got %v, want %q", err, want)
	}
	// A stale socket file: connection refused.
	ln, err := Listen(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v %v", st, err)
	}
	if _, err := Listen(filepath.Dir(p)); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second listener: %v", err)
	}
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := Dial(p); err == nil || !strings.HasSuffix(err.Error(), "connect "+p+": connection refused") {
		t.Errorf("stale socket: %v", err)
	}
	// Listen replaces the stale file.
	ln, err = Listen(filepath.Dir(p))
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	ln.Close()
}

// serve runs a Server on a socket in a temp directory; the returned
// channel yields Serve's result once.
func serve(t *testing.T, cfg Config) (*Client, <-chan error, context.CancelFunc) {
	t.Helper()
	dir := t.TempDir()
	cfg.Dir = dir
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() { done <- s.Serve(ctx, ln); close(finished) }()
	c, err := Dial(filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-finished
	})
	return c, done, cancel
}

func TestServerCalls(t *testing.T) {
	c, _, _ := serve(t, Config{})
	ctx := context.Background()
	_, err := c.Setup(ctx, &proxypb.NetworkConfig{ContainerIface: "eth0", NsPath: "/x", Version: proxypb.Version_V6})
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != codes.Unimplemented || pe.Msg != "ipv6 not yet supported" {
		t.Errorf("v6: %v", err)
	}
	const mac = "02:00:00:00:00:09"
	_, err = c.Setup(ctx, &proxypb.NetworkConfig{ContainerIface: "eth0", ContainerMacAddr: mac})
	if !errors.As(err, &pe) || pe.Code != codes.InvalidArgument {
		t.Errorf("no ns_path: %v", err)
	}
	// netavark refuses a missing MAC before it looks at anything else.
	_, err = c.Setup(ctx, &proxypb.NetworkConfig{ContainerIface: "eth0", NsPath: "/x"})
	if !errors.As(err, &pe) || pe.Code != codes.InvalidArgument || !strings.Contains(pe.Msg, `container_mac_addr ""`) {
		t.Errorf("no MAC: %v", err)
	}
	_, err = c.Setup(ctx, &proxypb.NetworkConfig{ContainerIface: "eth0", ContainerMacAddr: mac, NsPath: filepath.Join(t.TempDir(), "gone")})
	if !errors.As(err, &pe) || pe.Code != codes.InvalidArgument || !strings.Contains(pe.Msg, "open namespace") {
		t.Errorf("missing ns: %v", err)
	}
	if l, err := c.Teardown(ctx, &proxypb.NetworkConfig{ContainerIface: "eth0", ContainerMacAddr: "02:00:00:00:00:09"}); err != nil || l.GetYiaddr() != "" {
		t.Errorf("teardown of an unknown lease: %v %v", l, err)
	}
	if err := c.Clean(ctx); err != nil {
		t.Errorf("clean: %v", err)
	}
}

func TestActivityTimeout(t *testing.T) {
	start := time.Now()
	_, done, _ := serve(t, Config{ActivityTimeout: 300 * time.Millisecond})
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("exited after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("idle proxy did not exit")
	}
}

func TestNoActivityTimeout(t *testing.T) {
	_, done, cancel := serve(t, Config{})
	select {
	case err := <-done:
		t.Fatalf("exited without activity timeout: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// The cache has netavark's shape: an object keyed by MAC, each holding a
// list of one lease in the API's form; an empty cache is {}. berth's
// earlier form is still read.
func TestStoreNetavarkForm(t *testing.T) {
	s := store{path: filepath.Join(t.TempDir(), LeaseFile)}
	const mac = "02:00:00:00:00:01"
	if err := s.save(map[string]*record{mac: {ContainerIface: "eth0", MAC: mac, NSPath: "/run/netns/a", Hostname: "web", Lease: testLease()}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.path)
	var f map[string][]map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("not netavark's form: %v\n%s", err, b)
	}
	if len(f) != 1 || len(f[mac]) != 1 {
		t.Fatalf("cache %s", b)
	}
	l := f[mac][0]
	for k, want := range map[string]any{"yiaddr": "198.18.1.100", "subnet_mask": "255.255.255.0", "mac_address": mac,
		"lease_time": 120.0, "host_name": "web", "srv_id": "198.18.1.1", "is_v6": false} {
		if l[k] != want {
			t.Errorf("%s = %v, want %v", k, l[k], want)
		}
	}
	for _, k := range []string{"t1", "t2", "mtu", "domain_name", "siaddr", "broadcast_addr", "dns_servers", "gateways", "ntp_servers"} {
		if _, ok := l[k]; !ok {
			t.Errorf("field %s missing", k)
		}
	}
	if err := s.save(map[string]*record{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(s.path); strings.TrimSpace(string(b)) != "{}" {
		t.Errorf("empty cache: %s", b)
	}
	// A lease netavark wrote has no record to resume: it is left out.
	os.WriteFile(s.path, []byte(`{"`+mac+`":[{"yiaddr":"198.18.1.5"}]}`), 0o600)
	if got, err := s.load(); err != nil || len(got) != 0 {
		t.Errorf("netavark's cache: %v %v", got, err)
	}
	old := `{"version":1,"leases":{"` + mac + `":{"container_iface":"eth0","mac":"` + mac + `","ns_path":"/run/netns/a","metric":99,"lease":null}}}`
	os.WriteFile(s.path, []byte(old), 0o600)
	if got, err := s.load(); err != nil || got[mac] == nil || got[mac].NSPath != "/run/netns/a" {
		t.Errorf("earlier form: %v %v", got, err)
	}
}
