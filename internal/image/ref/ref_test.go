package ref

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                       "docker.io/library/busybox:latest",
		"busybox:1.36":                  "docker.io/library/busybox:1.36",
		"library/busybox":               "docker.io/library/busybox:latest",
		"docker.io/busybox":             "docker.io/library/busybox:latest",
		"index.docker.io/library/nginx": "docker.io/library/nginx:latest",
		"prom/prometheus":               "docker.io/prom/prometheus:latest",
		"quay.io/podman/hello":          "quay.io/podman/hello:latest",
		"localhost/banner":              "localhost/banner:latest",
		"localhost:5000/a/b:v1":         "localhost:5000/a/b:v1",
		"127.0.0.1:5000/x":              "127.0.0.1:5000/x:latest",
		"busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef":   "docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "docker.io/library/busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"registry.example.com:443/team/app:2.0-rc1":                                         "registry.example.com:443/team/app:2.0-rc1",
	} {
		got, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if got.String() != want {
			t.Errorf("Parse(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"", "Busybox", "busybox:", "busybox:bad tag", "a//b", "busybox@sha256:short",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ":latest", "-bad",
	} {
		if r, err := Parse(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, %v; want ErrInvalid", in, r, err)
		}
	}
}

func TestParseLocal(t *testing.T) {
	for in, want := range map[string]string{
		"banner":              "localhost/banner:latest",
		"banner:v2":           "localhost/banner:v2",
		"me/banner":           "localhost/me/banner:latest",
		"quay.io/me/banner":   "quay.io/me/banner:latest",
		"localhost/banner:v1": "localhost/banner:v1",
	} {
		got, err := ParseLocal(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseLocal(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
}

func TestCandidates(t *testing.T) {
	var got []string
	for _, c := range Candidates("banner") {
		got = append(got, c.String())
	}
	if len(got) != 2 || got[0] != "localhost/banner:latest" || got[1] != "docker.io/library/banner:latest" {
		t.Errorf("Candidates(banner) = %v", got)
	}
	if c := Candidates("quay.io/x/y:1"); len(c) != 1 || c[0].String() != "quay.io/x/y:1" {
		t.Errorf("Candidates(quay.io/x/y:1) = %v", c)
	}
}
