package runopts

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseHealthcheck(t *testing.T) {
	def := func(cmd string) HealthFlags { return HealthFlags{Cmd: cmd, Retries: 3} }
	cases := map[string][]string{
		"curl -f http://localhost/":                  {"CMD-SHELL", "curl -f http://localhost/"},
		"/bin/sh -c 'wget -qO- localhost || exit 1'": {"CMD-SHELL", "/bin/sh -c 'wget -qO- localhost || exit 1'"},
		`["CMD", "test", "-e", "/ok"]`:               {"CMD", "test", "-e", "/ok"},
		`["CMD-SHELL", "test -e /ok"]`:               {"CMD-SHELL", "test -e /ok"},
		`["test", "-e", "/ok"]`:                      {"CMD", "test", "-e", "/ok"},
		`["true"]`:                                   {"CMD-SHELL", "true"},
		"CMD test -e /ok":                            {"CMD", "test", "-e", "/ok"},
		"CMD-SHELL test -e /ok":                      {"CMD-SHELL", "test -e /ok"},
	}
	for in, want := range cases {
		hc, err := ParseHealthcheck(def(in))
		if err != nil || hc == nil || !reflect.DeepEqual(hc.Test, want) {
			t.Errorf("%q: %+v %v, want %q", in, hc, err, want)
			continue
		}
		if hc.Interval != 30*time.Second || hc.Timeout != 30*time.Second || hc.StartPeriod != 0 || hc.Retries != 3 {
			t.Errorf("%q: defaults %+v", in, hc)
		}
	}
	for _, none := range []string{"", "none", "NONE", `["NONE"]`} {
		if hc, err := ParseHealthcheck(def(none)); hc != nil || err != nil {
			t.Errorf("%q: %+v %v, want no healthcheck", none, hc, err)
		}
	}
	hc, err := ParseHealthcheck(HealthFlags{Cmd: "true", Interval: "disable", Timeout: "2s", StartPeriod: "1m", Retries: 1})
	if err != nil || hc.Interval != 0 || hc.Timeout != 2*time.Second || hc.StartPeriod != time.Minute || hc.Retries != 1 {
		t.Errorf("given flags: %+v %v", hc, err)
	}
	if got := (&Healthcheck{Test: []string{"CMD-SHELL", "a && b"}}).Argv(); !reflect.DeepEqual(got, []string{"/bin/sh", "-c", "a && b"}) {
		t.Errorf("CMD-SHELL argv %q", got)
	}
	if got := (&Healthcheck{Test: []string{"CMD", "test", "-e", "/ok"}}).Argv(); !reflect.DeepEqual(got, []string{"test", "-e", "/ok"}) {
		t.Errorf("CMD argv %q", got)
	}
	errs := map[string]HealthFlags{
		"invalid healthcheck-interval":                   {Cmd: "true", Interval: "often", Retries: 3},
		"healthcheck-retries must be greater than 0":     {Cmd: "true"},
		"healthcheck-timeout must be at least 1 second":  {Cmd: "true", Timeout: "10ms", Retries: 3},
		"invalid healthcheck-start-period":               {Cmd: "true", StartPeriod: "x", Retries: 3},
		"healthcheck-start-period must be 0 seconds":     {Cmd: "true", StartPeriod: "-1s", Retries: 3},
		"must define a healthcheck command":              {Cmd: "[]", Retries: 3},
		"must define a healthcheck command for all":      {Cmd: `["CMD"]`, Retries: 3},
		"must define a healthcheck command for all heal": {Cmd: `["CMD-SHELL", " "]`, Retries: 3},
	}
	for want, f := range errs {
		if _, err := ParseHealthcheck(f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", f, err, want)
		}
	}
}

func FuzzParseHealthcheck(f *testing.F) {
	for _, s := range []string{"curl x", `["CMD", "a"]`, `["CMD-SHELL", "a b"]`, `["a", "b"]`, "none", "[]", `[""]`, "CMD", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		hc, err := ParseHealthcheck(HealthFlags{Cmd: cmd, Retries: 3})
		if err != nil || hc == nil {
			return
		}
		switch hc.Test[0] {
		case "CMD":
			if len(hc.Test) < 2 || len(hc.Argv()) != len(hc.Test)-1 {
				t.Fatalf("%q: CMD test %q", cmd, hc.Test)
			}
		case "CMD-SHELL":
			if len(hc.Test) != 2 || hc.Argv()[0] != "/bin/sh" {
				t.Fatalf("%q: CMD-SHELL test %q", cmd, hc.Test)
			}
		default:
			t.Fatalf("%q: test %q starts with neither CMD nor CMD-SHELL", cmd, hc.Test)
		}
	})
}
