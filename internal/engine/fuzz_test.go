package engine

import (
	"testing"
	"time"
)

// FuzzParseRestartPolicy: what --restart accepts is a known policy, with
// retries only for on-failure.
func FuzzParseRestartPolicy(f *testing.F) {
	for _, s := range []string{"", "no", "always", "on-failure:3", "on-failure:-1", "a:b:c", "unless-stopped"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseRestartPolicy(s)
		if err != nil {
			return
		}
		switch p.Name {
		case "", RestartNo, RestartOnFailure, RestartAlways, RestartUnlessStopped:
		default:
			t.Fatalf("%q parsed to policy %q", s, p.Name)
		}
		if p.MaxRetries > 0 && p.Name != RestartOnFailure {
			t.Fatalf("%q: retries with %q", s, p.Name)
		}
	})
}

// FuzzParseHealthCmd: a --health-cmd that defines a check has a command
// to execute.
func FuzzParseHealthCmd(f *testing.F) {
	for _, s := range []string{"x", `["a","b"]`, "CMD a", "NONE", "[]", `[""]`, "CMD-SHELL"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		test, err := ParseHealthCmd(s)
		if err != nil {
			return
		}
		hc := &Healthcheck{Test: test}
		if hc.Defined() {
			if argv, err := hc.argv(); err != nil || len(argv) == 0 {
				t.Fatalf("%q: defined without a command", s)
			}
		}
	})
}

// FuzzMakeHealthcheck: an accepted health check keeps Podman's bounds.
func FuzzMakeHealthcheck(f *testing.F) {
	f.Add("x", "30s", "30s", "0s", uint(3))
	f.Add("x", "disable", "1s", "-1s", uint(0))
	f.Fuzz(func(t *testing.T, cmd, interval, timeout, start string, retries uint) {
		hc, err := MakeHealthcheck(HealthOptions{Cmd: cmd, Interval: interval, Timeout: timeout, StartPeriod: start, Retries: retries})
		if err != nil || hc == nil {
			return
		}
		if hc.Retries < 1 || hc.Timeout < time.Second || hc.StartPeriod < 0 {
			t.Fatalf("accepted %+v", hc)
		}
	})
}
