package change

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestApply(t *testing.T) {
	var c v1.Config
	err := Apply(&c, []string{
		`CMD ["httpd","-f","-v","-p","80","-h","/www"]`,
		`ENTRYPOINT /bin/entry --flag`,
		`ENV A=1 B="two words" C=x\ y`,
		`ENV LEGACY a value with spaces`,
		`ENV A=override`,
		`EXPOSE 80`,
		`expose 53/udp 8000-8002/tcp`,
		`LABEL org.example.name="my app" version=1`,
		`STOPSIGNAL term`,
		`USER 1000:1000`,
		`WORKDIR /srv`,
		`WORKDIR data`,
		`VOLUME ["/data","/logs"]`,
		`CMD=/bin/true`, // Podman's KEY=VALUE spelling
	})
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Cmd:        []string{"/bin/sh", "-c", "/bin/true"},
		Entrypoint: []string{"/bin/sh", "-c", "/bin/entry --flag"},
		Env:        []string{"A=override", "B=two words", "C=x y", "LEGACY=a value with spaces"},
		ExposedPorts: map[string]struct{}{
			"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {},
		},
		Labels:     map[string]string{"org.example.name": "my app", "version": "1"},
		StopSignal: "SIGTERM",
		User:       "1000:1000",
		WorkingDir: "/srv/data",
		Volumes:    map[string]struct{}{"/data": {}, "/logs": {}},
	}
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

func TestApplyExecForm(t *testing.T) {
	var c v1.Config
	if err := Apply(&c, []string{`CMD ["httpd","-f"]`, `ENTRYPOINT []`}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"httpd", "-f"}, c.Cmd); d != "" {
		t.Error(d)
	}
	if c.Entrypoint == nil || len(c.Entrypoint) != 0 {
		t.Errorf("ENTRYPOINT [] = %#v, want empty", c.Entrypoint)
	}
	// Invalid JSON is the shell form, as Docker does.
	if err := Apply(&c, []string{`CMD [not json`}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"/bin/sh", "-c", "[not json"}, c.Cmd); d != "" {
		t.Error(d)
	}
}

func TestApplyRejects(t *testing.T) {
	for _, ch := range []string{
		"RUN echo hi", "EXPOSE 0", "EXPOSE 70000", "EXPOSE 80/icmp", "EXPOSE 90-80",
		"STOPSIGNAL SIGNOPE", "STOPSIGNAL 65", "ENV", "ENV NOVALUE", "LABEL =x", "USER",
		`ENV A="unterminated`, "VOLUME relative", "CMD",
	} {
		var c v1.Config
		if err := Apply(&c, []string{ch}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Apply(%q) = %v, want ErrInvalid", ch, err)
		}
	}
}
