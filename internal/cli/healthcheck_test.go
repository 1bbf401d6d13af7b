package cli

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// An image's HEALTHCHECK becomes the container's check (Docker's
// defaults for what it leaves out); --health-cmd replaces it and
// --no-healthcheck turns it off.
func TestImageHealthcheck(t *testing.T) {
	c := newImageCLI(t)
	s := c.store(t)
	img, err := mutate.Config(empty.Image, v1.Config{
		Cmd:         []string{"sh"},
		Healthcheck: &v1.HealthConfig{Test: []string{"CMD-SHELL", "test -e /ok"}, Interval: 5 * time.Second, Retries: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(context.Background(), img, []string{"localhost/hc:latest"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, `{"Test":["CMD-SHELL","test -e /ok"],"Interval":5000000000,"Timeout":30000000000,"Retries":2} none`},
		{[]string{"--health-cmd", "CMD true", "--health-on-failure", "stop"}, `{"Test":["CMD","true"],"Interval":30000000000,"Timeout":30000000000,"Retries":3} stop`},
		{[]string{"--no-healthcheck"}, `{"Test":["NONE"]} none`},
	} {
		name := "c" + strconv.Itoa(len(tc.flags))
		args := append(append([]string{"create", "--name", name, "--network", "none"}, tc.flags...), "hc")
		if out, errOut, code := c.run(nil, args...); code != 0 {
			t.Fatalf("%v: %d %s %s", args, code, out, errOut)
		}
		out, errOut, _ := c.run(nil, "inspect", "--format", "{{json .Config.Healthcheck}} {{.Config.HealthcheckOnFailureAction}}", name)
		if strings.TrimSpace(out) != tc.want {
			t.Errorf("%v: %q %s, want %q", tc.flags, out, errOut, tc.want)
		}
	}
	// A created container: healthcheck run refuses with Podman's message.
	if _, errOut, code := c.run(nil, "healthcheck", "run", "c0"); code != 125 || !strings.Contains(errOut, " is not running") {
		t.Errorf("healthcheck run on a created container: %d %q", code, errOut)
	}
}
