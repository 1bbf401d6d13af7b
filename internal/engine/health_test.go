package engine

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Podman 4.3.1's tests for each --health-cmd form.
func TestParseHealthCmd(t *testing.T) {
	cases := map[string][]string{
		"test -e /x":             {"CMD-SHELL", "test -e /x"},
		`["CMD","ls","/"]`:       {`["CMD","ls","/"]`},
		"CMD ls /":               {"CMD", "ls", "/"},
		`["ls","/"]`:             {"CMD", "ls", "/"},
		"NONE":                   {"NONE"},
		"none":                   {"NONE"},
		`["CMD-SHELL","a b"]`:    {"CMD-SHELL", "a b"},
		"CMD-SHELL a b":          {"CMD-SHELL", "a b"},
		`["one"]`:                {"CMD-SHELL", "one"},
		"one":                    {"CMD-SHELL", "one"},
		"curl -f http://x/ || 1": {"CMD-SHELL", "curl -f http://x/ || 1"},
	}
	for in, want := range cases {
		got, err := ParseHealthCmd(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseHealthCmd("[]"); err == nil || err.Error() != "must define a healthcheck command for all healthchecks" {
		t.Errorf("[]: %v", err)
	}
}

func TestMakeHealthcheck(t *testing.T) {
	d := DefaultHealthOptions
	hc, err := MakeHealthcheck(d)
	if hc != nil || err != nil {
		t.Errorf("no --health-cmd: %+v %v", hc, err)
	}
	o := d
	o.Cmd, o.Interval, o.Retries, o.StartPeriod, o.Timeout = "test -e /tmp/ok", "2s", 2, "1s", "3s"
	hc, err = MakeHealthcheck(o)
	want := &Healthcheck{Test: []string{"CMD-SHELL", "test -e /tmp/ok"}, Interval: 2 * time.Second, Retries: 2, StartPeriod: time.Second, Timeout: 3 * time.Second}
	if err != nil || !reflect.DeepEqual(hc, want) {
		t.Errorf("flags: %+v %v", hc, err)
	}
	o = d
	o.Cmd, o.Interval = "x", "disable"
	if hc, err = MakeHealthcheck(o); err != nil || hc.Interval != 0 || hc.Defined() != true {
		t.Errorf("--health-interval disable: %+v %v", hc, err)
	}
	o = d
	o.None = true
	if hc, err = MakeHealthcheck(o); err != nil || !reflect.DeepEqual(hc.Test, []string{"NONE"}) || hc.Defined() {
		t.Errorf("--no-healthcheck: %+v %v", hc, err)
	}
	bad := map[string]func(o *HealthOptions){
		"cannot specify both --no-healthcheck and --health-cmd":        func(o *HealthOptions) { o.None = true },
		`invalid healthcheck-interval: time: invalid duration "bogus"`: func(o *HealthOptions) { o.Interval = "bogus" },
		"healthcheck-retries must be greater than 0":                   func(o *HealthOptions) { o.Retries = 0 },
		"healthcheck-timeout must be at least 1 second":                func(o *HealthOptions) { o.Timeout = "0s" },
		`invalid healthcheck-timeout: time: invalid duration "x"`:      func(o *HealthOptions) { o.Timeout = "x" },
		"healthcheck-start-period must be 0 seconds or greater":        func(o *HealthOptions) { o.StartPeriod = "-1s" },
		`invalid healthcheck-start-period: time: invalid duration "x"`: func(o *HealthOptions) { o.StartPeriod = "x" },
	}
	for msg, f := range bad {
		o := d
		o.Cmd = "x"
		f(&o)
		if _, err := MakeHealthcheck(o); err == nil || err.Error() != msg {
			t.Errorf("%+v: %v, want %q", o, err, msg)
		}
	}
}

func TestParseHealthOnFailure(t *testing.T) {
	for in, want := range map[string]string{"": "none", "none": "none", "kill": "kill", "restart": "restart", "stop": "stop"} {
		if got, err := ParseHealthOnFailure(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParseHealthOnFailure("bogus"); err == nil || err.Error() != `invalid on-failure action "bogus" for health check: supported actions are none,kill,restart,stop` {
		t.Errorf("bogus: %v", err)
	}
}

func TestHealthRecord(t *testing.T) {
	ok, bad := HealthLog{ExitCode: 0}, HealthLog{ExitCode: 1}
	h := Health{Status: HealthStarting}
	// Failures in the start period count for nothing.
	h = h.Record(bad, 2, true)
	if h.Status != HealthStarting || h.FailingStreak != 0 {
		t.Errorf("failure in the start period: %+v", h)
	}
	h = h.Record(ok, 2, false)
	if h.Status != HealthHealthy || h.FailingStreak != 0 {
		t.Errorf("success: %+v", h)
	}
	h = h.Record(bad, 2, false)
	if h.Status != HealthHealthy || h.FailingStreak != 1 {
		t.Errorf("one failure of two retries: %+v", h)
	}
	h = h.Record(bad, 2, false)
	if h.Status != HealthUnhealthy || h.FailingStreak != 2 {
		t.Errorf("two failures: %+v", h)
	}
	h = h.Record(ok, 2, false)
	if h.Status != HealthHealthy || h.FailingStreak != 0 || len(h.Log) != 5 {
		t.Errorf("success again: %+v", h)
	}
	h = h.Record(HealthLog{ExitCode: 7, Output: strings.Repeat("x", 600)}, 2, false)
	if len(h.Log) != 5 || h.Log[4].ExitCode != 7 || len(h.Log[4].Output) != 500 || h.Log[0].ExitCode != 0 || h.Log[1].ExitCode != 1 {
		t.Errorf("log: %+v", h.Log)
	}
	// A container never checked before counts as healthy until retries.
	if h := (Health{}).Record(bad, 3, false); h.Status != HealthHealthy || h.FailingStreak != 1 {
		t.Errorf("first failure without a status: %+v", h)
	}
}

func TestImageHealthcheck(t *testing.T) {
	if ImageHealthcheck(nil) != nil || ImageHealthcheck(&Healthcheck{}) != nil {
		t.Error("no HEALTHCHECK")
	}
	got := ImageHealthcheck(&Healthcheck{Test: []string{"CMD", "true"}, Interval: time.Second})
	want := &Healthcheck{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 30 * time.Second, Retries: 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults: %+v", got)
	}
	for test, argv := range map[string][]string{"CMD true": {"true"}, "CMD-SHELL a b": {"/bin/sh", "-c", "a b"}, "x y": {"x", "y"}} {
		hc := &Healthcheck{Test: strings.SplitN(test, " ", 2)}
		if test == "CMD-SHELL a b" {
			hc.Test = []string{"CMD-SHELL", "a b"}
		}
		if got, err := hc.argv(); err != nil || !reflect.DeepEqual(got, argv) {
			t.Errorf("%q: %q %v", test, got, err)
		}
	}
}
