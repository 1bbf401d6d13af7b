package runopts

import (
	"path"
	"reflect"
	"strings"
	"testing"
)

func TestParseVolume(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mount
	}{
		{"/data", Mount{Type: MountVolume, Destination: "/data", Anonymous: true}},
		{"vol1:/data", Mount{Type: MountVolume, Source: "vol1", Destination: "/data"}},
		{"vol1:/data/:ro,nocopy", Mount{Type: MountVolume, Source: "vol1", Destination: "/data", Options: []string{"ro", "nocopy"}}},
		{"/srv:/srv:ro,Z,rshared", Mount{Type: MountBind, Source: "/srv", Destination: "/srv", Options: []string{"ro", "Z", "rshared"}}},
		{"./dir:/x", Mount{Type: MountBind, Source: "./dir", Destination: "/x"}},
		{"/a:/b:noexec,nodev,nosuid,bind", Mount{Type: MountBind, Source: "/a", Destination: "/b", Options: []string{"noexec", "nodev", "nosuid", "bind"}}},
	} {
		got, err := ParseVolume(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseVolume(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseVolumeErrors(t *testing.T) {
	for in, want := range map[string]string{
		"a:b:c:d":             "incorrect volume format",
		":/x":                 "host directory cannot be empty",
		"data":                `invalid container path "data"`,
		"/x:ro":               `invalid container path "ro"`,
		"v:/x:ro,rw":          "can only specify 1 'rw' or 'ro' option",
		"v:/x:z,Z":            "can only specify 1 'z' or 'Z' option",
		"v:/x:shared,private": "'[r]shared'",
		"v:/x:bogus":          `invalid option type "bogus"`,
		"v:/x:U":              "berth does not support changing the owner",
		"/h:/x:O":             "berth does not support overlay mounts",
		"v:/x:idmap":          "ID-mapped",
		"/h:/x:nocopy":        "apply to volumes, not bind mounts",
		"-bad:/x":             `volume name "-bad"`,
	} {
		_, err := ParseVolume(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--volume") {
			t.Errorf("ParseVolume(%q) error %v, want %q", in, err, want)
		}
	}
}

func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mount
	}{
		{"type=bind,source=/srv,target=/srv,ro", Mount{Type: MountBind, Source: "/srv", Destination: "/srv", Options: []string{"ro"}}},
		{"type=bind,src=/srv,dst=/x,readonly=false,bind-propagation=rslave,bind-nonrecursive", Mount{Type: MountBind, Source: "/srv", Destination: "/x", Options: []string{"rw", "rslave", "bind"}}},
		{"type=volume,source=v,destination=/d,volume-nocopy", Mount{Type: MountVolume, Source: "v", Destination: "/d", Options: []string{"nocopy"}}},
		{"type=bind,source=/a,destination=/d,relabel=shared", Mount{Type: MountBind, Source: "/a", Destination: "/d", Options: []string{"z"}}},
		{"target=/d,type=volume", Mount{Type: MountVolume, Destination: "/d", Anonymous: true}},
		{"type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777,exec", Mount{Type: MountTmpfs, Destination: "/t", Options: []string{"rw", "nosuid", "nodev", "size=64m", "mode=1777", "exec"}}},
		{"type=tmpfs,dst=/t,consistency=cached", Mount{Type: MountTmpfs, Destination: "/t", Options: []string{"rw", "noexec", "nosuid", "nodev"}}},
	} {
		got, err := ParseMount(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMount(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseMountErrors(t *testing.T) {
	for in, want := range map[string]string{
		"source=/a,target=/b":                               "incorrect mount format",
		"type=volume,target=/b,relabel=private":             `"relabel" option not supported for "volume"`,
		"type=nfs,target=/b":                                `invalid filesystem type "nfs"`,
		"type=image,source=x,target=/b":                     "berth does not support mounts of type \"image\"",
		"type=bind,target=/b":                               "must set volume source",
		"type=bind,source=/a":                               "must set volume destination",
		"type=bind,source=/a,target=b":                      "must be an absolute path",
		"type=bind,source=/a,target=/b,ro,rw":               "more than once",
		"type=bind,source=/a,target=/b,tmpfs-size=1m":       `"tmpfs-size" option not supported for "bind" mount types`,
		"type=tmpfs,source=/a,target=/b":                    `"source" option not supported for "tmpfs"`,
		"type=volume,source=v,target=/b,U":                  `berth does not support the mount option "U"`,
		"type=volume,source=v,target=/b,foo=bar":            "invalid mount option",
		"type=bind,source=/a,target=/b,bind-propagation=up": "invalid value",
		"type=bind,source=/a,target=/b,ro=maybe":            "want true or false",
		"type=tmpfs,target=/b,tmpfs-size=big":               `invalid tmpfs option "size=big"`,
		"type=bind,source=vol,target=/b":                    "must be a path",
	} {
		_, err := ParseMount(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--mount") {
			t.Errorf("ParseMount(%q) error %v, want %q", in, err, want)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	m, err := ParseTmpfs("/run:size=1m,mode=0700,exec")
	want := Mount{Type: MountTmpfs, Destination: "/run", Options: []string{"rw", "nosuid", "nodev", "size=1m", "mode=0700", "exec"}}
	if err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("ParseTmpfs = %+v, %v", m, err)
	}
	for in, want := range map[string]string{"run": "absolute path", "/run:size=x": `unknown mount option "size=x"`, "/run:nfsvers=3": "invalid mount option"} {
		if _, err := ParseTmpfs(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTmpfs(%q) error %v, want %q", in, err, want)
		}
	}
}

func TestCheckMounts(t *testing.T) {
	ms := []Mount{{Destination: "/a"}, {Destination: "/b"}}
	if err := CheckMounts(ms); err != nil {
		t.Error(err)
	}
	if err := CheckMounts(append(ms, Mount{Destination: "/a"})); err == nil || !strings.Contains(err.Error(), "duplicate mount destination") {
		t.Errorf("duplicate: %v", err)
	}
}

// FuzzParseStorage: no -v, --mount or --tmpfs value panics; every mount
// accepted has a known type, a clean absolute destination, a source when
// it is a bind mount or a named volume with a valid name.
func FuzzParseStorage(f *testing.F) {
	for _, s := range []string{"/data", "v:/d:ro", "/h:/c:rshared,Z", "type=bind,src=/a,dst=/b,ro", "type=tmpfs,target=/t,tmpfs-size=1m",
		"type=volume,target=/v", "/run:size=1m,exec", "a:b:c:d", "type=volume,source=x,target=/y,volume-nocopy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (Mount, error){ParseVolume, ParseMount, ParseTmpfs} {
			m, err := parse(s)
			if err != nil {
				continue
			}
			checkMount(t, s, m)
		}
	})
}

func checkMount(t *testing.T, s string, m Mount) {
	if !strings.HasPrefix(m.Destination, "/") || path.Clean(m.Destination) != m.Destination {
		t.Fatalf("%q: destination %q", s, m.Destination)
	}
	switch m.Type {
	case MountBind:
		if !strings.HasPrefix(m.Source, "/") && !strings.HasPrefix(m.Source, ".") {
			t.Fatalf("%q: bind source %q", s, m.Source)
		}
	case MountVolume:
		if m.Anonymous != (m.Source == "") || (m.Source != "" && !ValidVolumeName(m.Source)) {
			t.Fatalf("%q: volume %+v", s, m)
		}
	case MountTmpfs:
		if m.Source != "" {
			t.Fatalf("%q: tmpfs with a source", s)
		}
	default:
		t.Fatalf("%q: type %q", s, m.Type)
	}
}
