package rootless

import (
	"os"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

// TestPastaArgs: the layout of Podman 6's createPastaArgs.
func TestPastaArgs(t *testing.T) {
	cases := []struct {
		name      string
		s         PastaSetup
		want      string
		dns, host string
	}{
		{
			name: "no ports",
			s:    PastaSetup{PIDFile: "/r/p.pid", NetNS: "/r/ns"},
			want: "--config-net --dns-forward 169.254.1.1 -t none -u none -T none -U none --no-map-gw --quiet --map-guest-addr 169.254.1.2 --pid /r/p.pid --netns /r/ns",
			dns:  "169.254.1.1", host: "169.254.1.2",
		},
		{
			name: "published ports",
			s: PastaSetup{PIDFile: "/p", NetNS: "/n", Ports: []network.PortMapping{
				{HostPort: 8080, ContainerPort: 80, Range: 1, Protocol: "tcp"},
				{HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Range: 2, Protocol: "udp"},
				{HostPort: 9000, ContainerPort: 9000, Protocol: "tcp,udp"},
			}},
			want: "--config-net -t 8080-8080:80-80 -u 127.0.0.1/5353-5354:53-54 -t 9000-9000:9000-9000 -u 9000-9000:9000-9000 --dns-forward 169.254.1.1 -T none -U none --no-map-gw --quiet --map-guest-addr 169.254.1.2 --pid /p --netns /n",
			dns:  "169.254.1.1", host: "169.254.1.2",
		},
		{
			name: "options",
			s:    PastaSetup{PIDFile: "/p", NetNS: "/n", Options: []string{"--mtu", "1500", "--map-gw", "--dns-forward", "10.0.2.3", "--tcp-ns", "9300", "-d", "--map-guest-addr", "10.0.2.2"}},
			want: "--config-net --mtu 1500 --dns-forward 10.0.2.3 --tcp-ns 9300 -d --map-guest-addr 10.0.2.2 -t none -u none -U none --pid /p --netns /n",
			dns:  "10.0.2.3", host: "10.0.2.2",
		},
		{
			name: "rootless netns uplink",
			s:    PastaSetup{PIDFile: "/d/uplink.pid", NetNS: "/d/netns", Options: []string{"--berth-api-socket", "/d/api.sock", "-l", "/d/uplink.log"}},
			want: "--config-net --berth-api-socket /d/api.sock -l /d/uplink.log --dns-forward 169.254.1.1 -t none -u none -T none -U none --no-map-gw --quiet --map-guest-addr 169.254.1.2 --pid /d/uplink.pid --netns /d/netns",
			dns:  "169.254.1.1", host: "169.254.1.2",
		},
	}
	for _, c := range cases {
		pc, err := PastaArgs(c.s)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := strings.Join(pc.Args, " "); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
		if strings.Join(pc.DNSForward, " ") != c.dns || strings.Join(pc.MapGuestAddr, " ") != c.host {
			t.Errorf("%s: dns %q host %q", c.name, pc.DNSForward, pc.MapGuestAddr)
		}
	}
	for _, bad := range []PastaSetup{
		{Options: []string{"--pid", "/x"}},
		{Options: []string{"--pid=/x"}},
		{Options: []string{"-P/x"}},
		{Ports: []network.PortMapping{{HostPort: 1, ContainerPort: 1, Protocol: "sctp"}}},
	} {
		if _, err := PastaArgs(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestNetworkCmd(t *testing.T) {
	for in, want := range map[string]string{"": CmdPasta, "pasta": CmdPasta, "slirp4netns": CmdSlirp} {
		if got, err := NetworkCmd(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := NetworkCmd("vde"); err == nil || !strings.Contains(err.Error(), "default_rootless_network_cmd") {
		t.Errorf("vde: %v", err)
	}
}

func TestRootlessNetNSResolvConf(t *testing.T) {
	n := NetNS{Dir: t.TempDir()}
	for _, tc := range []struct {
		up   Uplink
		want string
	}{
		{Uplink{Cmd: CmdPasta}, "nameserver 169.254.1.1\n"},
		{Uplink{Cmd: CmdPasta, PastaOptions: []string{"--dns-forward", "198.18.9.9"}}, "nameserver 198.18.9.9\n"},
		{Uplink{Cmd: CmdSlirp}, ""},
	} {
		path, err := n.ResolvConf(tc.up)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == "" {
			if path != "" {
				t.Errorf("slirp4netns uplink: resolver file %q, want the host's", path)
			}
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != tc.want {
			t.Errorf("%v: %q %v, want %q", tc.up.PastaOptions, b, err, tc.want)
		}
	}
}
