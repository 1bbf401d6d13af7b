package dockerapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dnet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
)

// fakeBackend keeps networks in memory; it stands in for berth's stores
// so the handlers' translation is tested without root.
type fakeBackend struct {
	mu        sync.Mutex
	nets      []NetworkInfo
	connected []engine.ConnectRequest
	fakeStore
}

func (f *fakeBackend) Info(context.Context) (HostInfo, error) {
	return HostInfo{Name: "h", OS: "Debian", Arch: "amd64", Version: "test", NCPU: 2}, nil
}

func (f *fakeBackend) Networks(context.Context) ([]NetworkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]NetworkInfo(nil), f.nets...), nil
}

func (f *fakeBackend) Network(_ context.Context, ref string) (NetworkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nets {
		if n.Network.Name == ref || strings.HasPrefix(n.Network.ID, ref) {
			return n, nil
		}
	}
	return NetworkInfo{}, fmt.Errorf("unable to find network with name or ID %s: %w", ref, ErrNotFound)
}

func (f *fakeBackend) CreateNetwork(_ context.Context, n network.Network) (network.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.nets {
		if o.Network.Name == n.Name {
			return n, fmt.Errorf("network with name %s already exists: %w", n.Name, ErrConflict)
		}
	}
	h := sha256.Sum256([]byte(n.Name))
	n.ID = hex.EncodeToString(h[:])
	n.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(time.RFC3339Nano)
	if len(n.Subnets) == 0 {
		n.Subnets = []network.Subnet{{Subnet: netip.MustParsePrefix("10.89.0.0/24"), Gateway: netip.MustParseAddr("10.89.0.1")}}
	}
	f.nets = append(f.nets, NetworkInfo{Network: n})
	return n, nil
}

func (f *fakeBackend) RemoveNetwork(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, n := range f.nets {
		if n.Network.ID == ref || n.Network.Name == ref {
			if len(n.Endpoints) > 0 {
				return fmt.Errorf("network %s has active endpoints: %w", n.Network.Name, ErrForbidden)
			}
			f.nets = append(f.nets[:i], f.nets[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("network %s not found: %w", ref, ErrNotFound)
}

func (f *fakeBackend) Connect(_ context.Context, ctr string, r engine.ConnectRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctr != "c1" {
		return fmt.Errorf("no such container: %s: %w", ctr, ErrNotFound)
	}
	f.connected = append(f.connected, r)
	for i, n := range f.nets {
		if n.Network.ID == r.Network {
			f.nets[i].Endpoints = append(f.nets[i].Endpoints, Endpoint{ContainerID: "c1id", Name: "c1", MAC: "02:00:00:00:00:01", IPv4: netip.MustParsePrefix("10.89.0.2/24")})
		}
	}
	return nil
}

func (f *fakeBackend) Disconnect(_ context.Context, ctr, netID string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, n := range f.nets {
		if n.Network.ID == netID {
			f.nets[i].Endpoints = nil
			return nil
		}
	}
	return fmt.Errorf("network %s not found: %w", netID, ErrNotFound)
}

func (f *fakeBackend) IsDefaultNetwork(n network.Network) bool { return n.Name == "podman" }

// serve starts the API on a unix socket (as `berth system service`
// does) and returns Docker's own client for it.
func serve(t *testing.T, b Backend) (*client.Client, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(b, nil)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	c, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, sock
}

func TestVersionNegotiation(t *testing.T) {
	c, sock := serve(t, &fakeBackend{})
	ctx := context.Background()
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != MaxVersion || v.MinAPIVersion != MinVersion || c.ClientVersion() != MaxVersion {
		t.Fatalf("server %s (min %s), client negotiated %s", v.APIVersion, v.MinAPIVersion, c.ClientVersion())
	}
	if _, err := c.Info(ctx, client.InfoOptions{}); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for path, want := range map[string]string{
		"/v1.99/networks":              "client version 1.99 is too new. Maximum supported API version is " + MaxVersion,
		"/v1.12/networks":              "client version 1.12 is too old",
		"/v1.41/swarm/init":            "berth does not implement GET /swarm/init (swarm mode) yet",
		"/v1.41/nonsense":              "page not found",
		"/v1.41/containers/abc/export": "berth does not implement GET /containers/abc/export (this container endpoint) yet",
	} {
		resp, err := hc.Get("http://d" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) || !strings.HasPrefix(string(body), `{"message":`) {
			t.Errorf("%s: %d %s, want message with %q", path, resp.StatusCode, body, want)
		}
	}
}

func TestNetworkLifecycle(t *testing.T) {
	b := &fakeBackend{}
	c, _ := serve(t, b)
	ctx := context.Background()
	ipv6 := true
	res, err := c.NetworkCreate(ctx, "front", client.NetworkCreateOptions{
		EnableIPv6: &ipv6,
		IPAM: &dnet.IPAM{Config: []dnet.IPAMConfig{{
			Subnet: netip.MustParsePrefix("198.18.5.0/24"), Gateway: netip.MustParseAddr("198.18.5.1"), IPRange: netip.MustParsePrefix("198.18.5.128/25"),
		}}},
		Options: map[string]string{optBridgeName: "brfront", optMTU: "1400"},
		Labels:  map[string]string{"com.docker.compose.project": "p"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := b.nets[0].Network
	if got.NetworkInterface != "brfront" || got.Options[network.OptMTU] != "1400" || !got.IPv6Enabled || !got.DNSEnabled ||
		got.Subnets[0].LeaseRange == nil || got.Subnets[0].LeaseRange.EndIP != netip.MustParseAddr("198.18.5.255") {
		t.Fatalf("backend got %+v", got)
	}
	if _, err := c.NetworkCreate(ctx, "front", client.NetworkCreateOptions{}); !cerrdefs.IsConflict(err) {
		t.Fatalf("duplicate create: %v, want a conflict", err)
	}
	if _, err := c.NetworkCreate(ctx, "x", client.NetworkCreateOptions{Driver: "overlay"}); err == nil || !strings.Contains(err.Error(), `"overlay" is not supported by berth`) {
		t.Fatalf("overlay: %v", err)
	}
	if _, err := c.NetworkCreate(ctx, "x", client.NetworkCreateOptions{Options: map[string]string{optICC: "false"}}); err == nil || !strings.Contains(err.Error(), optICC) {
		t.Fatalf("icc=false: %v", err)
	}

	in, err := c.NetworkInspect(ctx, "front", client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := in.Network
	if n.ID != res.ID || n.Driver != "bridge" || n.Scope != "local" || n.Options[optBridgeName] != "brfront" || n.Options[optMTU] != "1400" ||
		len(n.IPAM.Config) != 1 || n.IPAM.Config[0].IPRange != netip.MustParsePrefix("198.18.5.128/25") || n.Labels["com.docker.compose.project"] != "p" {
		t.Fatalf("inspect: %+v", n)
	}

	if _, err := c.NetworkConnect(ctx, "front", client.NetworkConnectOptions{Container: "c1", EndpointConfig: &dnet.EndpointSettings{
		Aliases: []string{"web"}, IPAMConfig: &dnet.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("198.18.5.130")},
	}}); err != nil {
		t.Fatal(err)
	}
	if r := b.connected[0]; r.Network != res.ID || r.Aliases[0] != "web" || r.IPs[0] != netip.MustParseAddr("198.18.5.130") {
		t.Fatalf("connect request %+v", r)
	}
	if _, err := c.NetworkConnect(ctx, "front", client.NetworkConnectOptions{Container: "nope"}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("connect missing container: %v", err)
	}
	in, _ = c.NetworkInspect(ctx, res.ID[:12], client.NetworkInspectOptions{})
	ep, ok := in.Network.Containers["c1id"]
	if !ok || ep.Name != "c1" || ep.IPv4Address.String() != "10.89.0.2/24" || ep.EndpointID == "" {
		t.Fatalf("endpoints %+v", in.Network.Containers)
	}
	if _, err := c.NetworkRemove(ctx, "front", client.NetworkRemoveOptions{}); !cerrdefs.IsPermissionDenied(err) {
		t.Fatalf("remove in use: %v, want forbidden", err)
	}

	list, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("label", "com.docker.compose.project=p")})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "front" {
		t.Fatalf("list by label: %+v %v", list.Items, err)
	}
	list, _ = c.NetworkList(ctx, client.NetworkListOptions{})
	var names []string
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "front,host,none" {
		t.Fatalf("list: %v", names)
	}
	if _, err := c.NetworkRemove(ctx, "host", client.NetworkRemoveOptions{}); !cerrdefs.IsPermissionDenied(err) {
		t.Fatalf("remove host: %v", err)
	}

	if _, err := c.NetworkDisconnect(ctx, "front", client.NetworkDisconnectOptions{Container: "c1"}); err != nil {
		t.Fatal(err)
	}
	pr, err := c.NetworkPrune(ctx, client.NetworkPruneOptions{})
	if err != nil || len(pr.Report.NetworksDeleted) != 1 || pr.Report.NetworksDeleted[0] != "front" {
		t.Fatalf("prune: %+v %v", pr, err)
	}
	if _, err := c.NetworkInspect(ctx, "front", client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect removed: %v", err)
	}
}

func TestNetworkFromCreateRefusals(t *testing.T) {
	f := false
	for name, req := range map[string]dnet.CreateRequest{
		"no name":     {},
		"swarm scope": {Name: "a", Scope: "swarm"},
		"ipv4 off":    {Name: "a", EnableIPv4: &f},
		"aux":         {Name: "a", IPAM: &dnet.IPAM{Config: []dnet.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/24"), AuxAddress: map[string]netip.Addr{"a": netip.MustParseAddr("10.0.0.5")}}}}},
		"range out":   {Name: "a", IPAM: &dnet.IPAM{Config: []dnet.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/24"), IPRange: netip.MustParsePrefix("10.0.1.0/25")}}}},
		"unknown opt": {Name: "a", Options: map[string]string{"com.example.x": "1"}},
		"host bind":   {Name: "a", Options: map[string]string{optHostBinding4: "127.0.0.1"}},
		"ipam driver": {Name: "a", IPAM: &dnet.IPAM{Driver: "dhcp"}},
	} {
		if _, err := NetworkFromCreate(req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	n, err := NetworkFromCreate(dnet.CreateRequest{Name: "m", Driver: "macvlan", Options: map[string]string{optParent: "eth0", optMacvlanMode: "bridge"}})
	if err != nil || n.NetworkInterface != "eth0" || n.Options[network.OptMode] != "bridge" || n.DNSEnabled {
		t.Fatalf("macvlan: %+v %v", n, err)
	}
	if in := NetworkInspect(NetworkInfo{Network: n}); in.Options[optParent] != "eth0" || in.Options[optMacvlanMode] != "bridge" {
		t.Fatalf("macvlan inspect options %v", in.Options)
	}
}

func TestRangePrefix(t *testing.T) {
	for _, tc := range []struct{ start, end, want string }{
		{"10.0.0.128", "10.0.0.255", "10.0.0.128/25"},
		{"10.0.0.0", "10.0.0.255", "10.0.0.0/24"},
		{"10.0.0.5", "10.0.0.5", "10.0.0.5/32"},
	} {
		got := rangePrefix(&network.LeaseRange{StartIP: netip.MustParseAddr(tc.start), EndIP: netip.MustParseAddr(tc.end)})
		if got.String() != tc.want {
			t.Errorf("%s-%s: %s, want %s", tc.start, tc.end, got, tc.want)
		}
	}
}

func (f *fakeBackend) Engine() (ContainerEngine, error) {
	return nil, fmt.Errorf("no engine in this test: %w", ErrNotImplemented)
}

func (f *fakeBackend) InspectInfo(*engine.Container) InspectInfo { return InspectInfo{} }

// At debug level each request is logged twice: as it comes and, once
// answered, with its status and how long it took.
func TestDebugLogRequests(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := New(&fakeBackend{}, log)
	for _, path := range []string{"/v1.41/_ping", "/v1.41/nonsense", "/containers/abc/export"} {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	for _, want := range []string{
		`msg=request method=GET path=/_ping version=1.41`,
		`msg="request done" method=GET path=/_ping status=200 took=`,
		`msg="request done" method=GET path=/nonsense status=404 took=`,
		`msg="request done" method=GET path=/containers/abc/export status=501 took=`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log has no %q:\n%s", want, buf.String())
		}
	}
}
