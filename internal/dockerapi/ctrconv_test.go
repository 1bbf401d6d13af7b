package dockerapi

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	dnet "github.com/moby/moby/api/types/network"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/runopts"
)

// TestCreateFromDockerVolumesBound: a Config.Volumes path that a bind,
// mount or tmpfs also names gets that one alone, as in Docker
// (docker-compose sends a service's volumes in both); the others stay
// anonymous volumes.
func TestCreateFromDockerVolumesBound(t *testing.T) {
	cfg := &container.Config{Image: "busybox", Volumes: map[string]struct{}{"/data": {}, "/cache/": {}, "/scratch": {}, "/anon": {}}}
	hc := &container.HostConfig{
		Binds:  []string{"demo_data:/data:rw"},
		Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "c", Target: "/cache"}},
		Tmpfs:  map[string]string{"/scratch": ""},
	}
	o, err := CreateFromDocker("db", cfg, hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range o.Mounts {
		got = append(got, m.Type+":"+m.Source+":"+m.Destination)
	}
	want := []string{"volume:demo_data:/data", "volume:c:/cache", "tmpfs::/scratch", "volume::/anon"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mounts %q, want %q", got, want)
	}
}

func TestCreateFromDocker(t *testing.T) {
	stop := 3
	initOn := true
	pids := int64(50)
	cfg := &container.Config{
		Image: "busybox", Cmd: []string{"httpd", "-f"}, Entrypoint: []string{""}, Env: []string{"A=1"},
		Tty: true, OpenStdin: true, StopTimeout: &stop, Labels: map[string]string{"com.docker.compose.service": "web"},
		ExposedPorts: dnet.PortSet{dnet.MustParsePort("80/tcp"): {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Healthcheck:  &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second},
	}
	hc := &container.HostConfig{
		NetworkMode:   "proj_front",
		PortBindings:  dnet.PortMap{dnet.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080"}}, dnet.MustParsePort("53/udp"): {{}}},
		RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2},
		Binds:         []string{"vol1:/srv:ro"},
		Mounts:        []mount.Mount{{Type: mount.TypeTmpfs, Target: "/run/x", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}},
		Tmpfs:         map[string]string{"/tmp": "size=1m"},
		CapAdd:        []string{"NET_ADMIN"},
		DNS:           []netip.Addr{netip.MustParseAddr("198.18.0.53")},
		ExtraHosts:    []string{"db:198.18.0.9"},
		Init:          &initOn,
		Resources:     container.Resources{Memory: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: &pids},
	}
	nc := &dnet.NetworkingConfig{EndpointsConfig: map[string]*dnet.EndpointSettings{
		"proj_front": {Aliases: []string{"web"}},
		"proj_back":  {IPAMConfig: &dnet.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("198.18.3.7")}},
	}}
	o, err := CreateFromDocker("web1", cfg, hc, nc)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "web1" || o.Image != "busybox" || o.Entrypoint == nil || len(o.Entrypoint) != 0 || !reflect.DeepEqual(o.Args, cfg.Cmd) ||
		!o.Terminal || !o.Stdin || *o.StopTimeout != 3 {
		t.Fatalf("config: %+v", o)
	}
	if o.RestartPolicy.Name != engine.RestartOnFailure || o.RestartPolicy.MaxRetries != 2 {
		t.Fatalf("restart policy %+v", o.RestartPolicy)
	}
	if o.Healthcheck == nil || o.Healthcheck.Test[0] != "CMD-SHELL" || o.Healthcheck.Interval != time.Second || o.Healthcheck.Retries != 3 {
		t.Fatalf("healthcheck %+v", o.Healthcheck)
	}
	want := []runopts.NetworkRequest{{Name: "proj_front", Aliases: []string{"web"}}, {Name: "proj_back", IPs: []netip.Addr{netip.MustParseAddr("198.18.3.7")}}}
	if o.Net.Kind != runopts.ModeBridge || !reflect.DeepEqual(o.Net.Networks, want) {
		t.Fatalf("networks %+v", o.Net)
	}
	if len(o.Ports) != 2 || o.Ports[0].ContainerPort != 53 || o.Ports[0].Protocol != "udp" || o.Ports[0].HostPort != 0 ||
		o.Ports[1].HostIP != "127.0.0.1" || o.Ports[1].HostPort != 8080 || o.Ports[1].ContainerPort != 80 {
		t.Fatalf("ports %+v", o.Ports)
	}
	if len(o.Expose) != 1 || o.Expose[0].ContainerPort != 80 {
		t.Fatalf("expose %+v", o.Expose)
	}
	var dests []string
	for _, m := range o.Mounts {
		dests = append(dests, m.Type+":"+m.Destination)
	}
	if !reflect.DeepEqual(dests, []string{"volume:/srv", "tmpfs:/run/x", "tmpfs:/tmp", "volume:/data"}) {
		t.Fatalf("mounts %v", dests)
	}
	rt := o.Runtime
	if rt.CapAdd[0] != "CAP_NET_ADMIN" || !rt.Init || rt.Resources.Memory != 64<<20 || rt.Resources.PidsLimit != 50 || rt.Resources.CPUQuota != 50000 {
		t.Fatalf("runtime %+v", rt)
	}
	if len(o.DNS.Servers) != 1 || len(o.AddHosts) != 1 {
		t.Fatalf("dns %+v hosts %+v", o.DNS, o.AddHosts)
	}
}

func TestCreateFromDockerNetworkModes(t *testing.T) {
	for mode, want := range map[string]runopts.NetMode{
		"":              {Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{{}}},
		"default":       {Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{{}}},
		"bridge":        {Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{{}}},
		"host":          {Kind: runopts.ModeHost},
		"none":          {Kind: runopts.ModeNone},
		"container:abc": {Kind: runopts.ModeContainer, Target: "abc"},
		"mynet":         {Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{{Name: "mynet"}}},
	} {
		o, err := CreateFromDocker("", &container.Config{Image: "x"}, &container.HostConfig{NetworkMode: container.NetworkMode(mode)}, nil)
		if err != nil || !reflect.DeepEqual(o.Net, want) {
			t.Errorf("%q: %+v %v, want %+v", mode, o.Net, err, want)
		}
	}
}

func TestCreateFromDockerRefusals(t *testing.T) {
	swappiness := int64(10)
	for name, hc := range map[string]*container.HostConfig{
		"links":       {Links: []string{"db:db"}},
		"volumesfrom": {VolumesFrom: []string{"c"}},
		"pid host":    {PidMode: "host"},
		"log driver":  {LogConfig: container.LogConfig{Type: "syslog"}},
		"swappiness":  {Resources: container.Resources{MemorySwappiness: &swappiness}},
		"gpus":        {Resources: container.Resources{DeviceRequests: []container.DeviceRequest{{Count: 1}}}},
		"cpuset":      {Resources: container.Resources{CpusetCpus: "0"}},
		"bad bind":    {Binds: []string{"::"}},
		"bad port":    {PortBindings: dnet.PortMap{dnet.MustParsePort("80/tcp"): {{HostPort: "99999"}}}},
		"rm+restart":  {AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}},
		"retry count": {RestartPolicy: container.RestartPolicy{Name: "always", MaximumRetryCount: 3}},
		"bad mount":   {Mounts: []mount.Mount{{Type: mount.TypeNamedPipe, Target: "/x"}}},
		"bad cap":     {CapAdd: []string{"NOT_A_CAP"}},
	} {
		_, err := CreateFromDocker("", &container.Config{Image: "x"}, hc, nil)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotImplemented) {
			t.Errorf("%s: %v is neither invalid nor not implemented", name, err)
		}
	}
	if _, err := CreateFromDocker("", &container.Config{}, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("no image: %v", err)
	}
}

func FuzzCreateFromDockerBinds(f *testing.F) {
	f.Add("vol:/srv:ro", "8080", "[::1]")
	f.Fuzz(func(t *testing.T, bind, hostPort, ip string) {
		a, _ := netip.ParseAddr(ip)
		hc := &container.HostConfig{Binds: []string{bind}, PortBindings: dnet.PortMap{dnet.MustParsePort("80/tcp"): {{HostIP: a, HostPort: hostPort}}}}
		_, err := CreateFromDocker("", &container.Config{Image: "x"}, hc, nil)
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotImplemented) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
