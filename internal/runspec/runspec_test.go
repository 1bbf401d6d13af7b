package runspec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestGenerate(t *testing.T) {
	s, err := Generate(Options{
		Process:     Process{Args: []string{"httpd", "-f"}, Env: []string{"A=1"}, Cwd: "/www", Terminal: true},
		Rootfs:      "/r",
		Hostname:    "web",
		NetNS:       "/run/berth/netns/x",
		Binds:       []Bind{{Source: "/u/hosts", Destination: "/etc/hosts"}},
		CgroupsPath: "/berth/x",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != "/r" || s.Hostname != "web" || s.Process.Cwd != "/www" || !s.Process.Terminal {
		t.Errorf("%+v", s)
	}
	if got := strings.Join(s.Process.Env, " "); got != "PATH="+DefaultPath+" A=1 TERM=xterm" {
		t.Errorf("env %s", got)
	}
	var netns *specs.LinuxNamespace
	for i, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			netns = &s.Linux.Namespaces[i]
		}
	}
	if netns == nil || netns.Path != "/run/berth/netns/x" {
		t.Errorf("netns %+v", netns)
	}
	last := s.Mounts[len(s.Mounts)-1]
	if last.Destination != "/etc/hosts" || last.Source != "/u/hosts" || last.Type != "bind" {
		t.Errorf("bind %+v", last)
	}
	if len(s.Process.Capabilities.Effective) != 11 {
		t.Errorf("caps %v", s.Process.Capabilities.Effective)
	}
	m, _ := Generate(Options{Process: Process{Args: []string{"true"}}, Rootfs: "/r", Hostname: "x", IPCNS: "/proc/7/ns/ipc", UTSNS: "/proc/7/ns/uts"})
	if m.Hostname != "" || m.Linux.Namespaces[1].Path != "/proc/7/ns/ipc" || m.Linux.Namespaces[2].Path != "/proc/7/ns/uts" {
		t.Errorf("joined namespaces: %q %+v", m.Hostname, m.Linux.Namespaces)
	}
	h, _ := Generate(Options{Process: Process{Args: []string{"true"}}, Rootfs: "/r", HostNetwork: true})
	for _, n := range h.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			t.Error("host network has a network namespace")
		}
	}
	if _, err := Generate(Options{Rootfs: "/r"}); !errors.Is(err, ErrNoCommand) {
		t.Errorf("no command: %v", err)
	}
	if _, err := Generate(Options{Rootfs: "/r", Process: Process{Args: []string{"x"}, Cwd: "rel"}}); err == nil {
		t.Error("relative cwd accepted")
	}
}

func TestCommand(t *testing.T) {
	cases := []struct {
		ep, cmd, flag, args []string
		want                string
	}{
		{[]string{"/init"}, []string{"serve"}, nil, nil, "/init serve"},
		{[]string{"/init"}, []string{"serve"}, nil, []string{"x"}, "/init x"},
		{nil, []string{"httpd"}, []string{"/bin/sh"}, nil, "/bin/sh"},
		{[]string{"/init"}, []string{"serve"}, []string{}, []string{"ls"}, "ls"},
		{[]string{"/init"}, []string{"serve"}, []string{"sh", "-c"}, []string{"echo x"}, "sh -c echo x"},
	}
	for _, c := range cases {
		if got := strings.Join(Command(c.ep, c.cmd, c.flag, c.args), " "); got != c.want {
			t.Errorf("got %q want %q", got, c.want)
		}
	}
}

func TestParseEntrypoint(t *testing.T) {
	cases := map[string][]string{
		"/bin/sh":         {"/bin/sh"},
		"sh -c":           {"sh -c"},
		`["sh", "-c"]`:    {"sh", "-c"},
		`["/bin/app"]`:    {"/bin/app"},
		"":                {},
		`[""]`:            {},
		`[]`:              {},
		`["sh", 1]`:       {`["sh", 1]`},
		`{"a": "b"}`:      {`{"a": "b"}`},
		`"quoted"`:        {`"quoted"`},
		`null`:            {"null"},
		`[ "a b" , "c" ]`: {"a b", "c"},
	}
	for in, want := range cases {
		got := ParseEntrypoint(in)
		if got == nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseEntrypoint(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func FuzzParseEntrypoint(f *testing.F) {
	for _, s := range []string{"", "/bin/sh", `["sh", "-c"]`, `[""]`, "[", `["a",`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseEntrypoint(s)
		if got == nil {
			t.Fatal("nil result")
		}
		if len(got) == 1 && got[0] == "" {
			t.Fatal(`[""] returned: want no entrypoint`)
		}
		if !strings.HasPrefix(strings.TrimSpace(s), "[") && s != "" && (len(got) != 1 || got[0] != s) {
			t.Fatalf("non-array %q parsed into %#v", s, got)
		}
	})
}

func TestResolveUser(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n")
	group := []byte("root:x:0:\nstaff:x:50:\n")
	cases := map[string][2]uint32{"": {0, 0}, "www": {33, 34}, "33": {33, 34}, "1000": {1000, 0}, "www:staff": {33, 50}, "www:7": {33, 7}}
	for in, want := range cases {
		u, g, err := ResolveUser(in, passwd, group)
		if err != nil || u != want[0] || g != want[1] {
			t.Errorf("%s: %d:%d %v", in, u, g, err)
		}
	}
	if _, _, err := ResolveUser("nobody", passwd, group); err == nil {
		t.Error("unknown user accepted")
	}
	if _, _, err := ResolveUser("www:nogroup", passwd, group); err == nil {
		t.Error("unknown group accepted")
	}
}

func TestMergeEnv(t *testing.T) {
	got := strings.Join(MergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"}), " ")
	if got != "PATH=/bin A=2 B=3" {
		t.Error(got)
	}
}

func TestGenerateRootless(t *testing.T) {
	s, err := Generate(Options{Rootfs: "/r", Process: Process{Args: []string{"sh"}}, CgroupsPath: "/berth/x", Rootless: true, HostNetwork: true, NoTTYGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.CgroupsPath != "" || s.Linux.Resources != nil {
		t.Errorf("rootless spec keeps cgroups: %q %+v", s.Linux.CgroupsPath, s.Linux.Resources)
	}
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/sys":
			if m.Type != "bind" || m.Source != "/sys" {
				t.Errorf("rootless host-network /sys: %+v", m)
			}
		case "/dev/pts":
			for _, o := range m.Options {
				if o == "gid=5" {
					t.Errorf("/dev/pts keeps gid=5: %v", m.Options)
				}
			}
		}
	}
	s, _ = Generate(Options{Rootfs: "/r", Process: Process{Args: []string{"sh"}}, Rootless: true})
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && m.Type != "sysfs" {
			t.Errorf("own network namespace: /sys %+v", m)
		}
	}
}

func TestGenerateStorageMounts(t *testing.T) {
	m := specs.Mount{Destination: "/data", Type: "bind", Source: "/var/lib/berth/volumes/v/_data", Options: []string{"rbind", "rprivate"}}
	s, err := Generate(Options{Rootfs: "/r", Process: Process{Args: []string{"sh"}},
		Binds: []Bind{{Source: "/run/hosts", Destination: "/etc/hosts"}}, Mounts: []specs.Mount{m}})
	if err != nil {
		t.Fatal(err)
	}
	n := len(s.Mounts)
	if n < 2 || s.Mounts[n-2].Destination != "/etc/hosts" || !reflect.DeepEqual(s.Mounts[n-1], m) {
		t.Errorf("mounts: %+v", s.Mounts)
	}
}
