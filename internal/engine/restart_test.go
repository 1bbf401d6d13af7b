package engine

import (
	"strings"
	"testing"
)

func TestParseRestartPolicy(t *testing.T) {
	ok := map[string]RestartPolicy{
		"":               {},
		"no":             {Name: "no"},
		"always":         {Name: "always"},
		"unless-stopped": {Name: "unless-stopped"},
		"on-failure":     {Name: "on-failure"},
		"on-failure:0":   {Name: "on-failure"},
		"on-failure:3":   {Name: "on-failure", MaxRetries: 3},
	}
	for in, want := range ok {
		got, err := ParseRestartPolicy(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	// Podman 4.3.1's messages.
	bad := map[string]string{
		"bogus":           `running container create option: "bogus" is not a valid restart policy: invalid argument`,
		"ALWAYS":          `"ALWAYS" is not a valid restart policy`,
		"always:3":        "restart policy retries can only be specified with on-failure restart policy",
		"on-failure:x":    `parsing restart policy retry count: strconv.Atoi: parsing "x": invalid syntax`,
		"on-failure:-1":   "must specify restart policy retry count as a number greater than 0",
		"on-failure:1:2":  "invalid restart policy: may specify retries at most once",
		"ON-FAILURE:1":    `"ON-FAILURE" is not a valid restart policy`,
		"unless-stopped:": "restart policy retries can only be specified with on-failure restart policy",
	}
	for in, want := range bad {
		if _, err := ParseRestartPolicy(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestCheckRestartWithRemove(t *testing.T) {
	for raw, refused := range map[string]bool{"": false, "no": false, "on-failure": false, "on-failure:0": true, "on-failure:3": true, "always": true, "unless-stopped": true} {
		p, err := ParseRestartPolicy(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckRestartWithRemove(raw, p, true); (err != nil) != refused {
			t.Errorf("--rm --restart=%s: %v, refused %v", raw, err, refused)
		}
		if err := CheckRestartWithRemove(raw, p, false); err != nil {
			t.Errorf("--restart=%s: %v", raw, err)
		}
	}
}

func TestRestartPolicyRestarts(t *testing.T) {
	cases := []struct {
		policy   RestartPolicy
		code     int
		restarts uint
		want     bool
	}{
		{RestartPolicy{}, 1, 0, false},
		{RestartPolicy{Name: "no"}, 1, 0, false},
		{RestartPolicy{Name: "always"}, 0, 100, true},
		{RestartPolicy{Name: "unless-stopped"}, 137, 5, true},
		{RestartPolicy{Name: "on-failure"}, 0, 0, false},
		{RestartPolicy{Name: "on-failure"}, 1, 1000, true},
		{RestartPolicy{Name: "on-failure", MaxRetries: 2}, 1, 0, true},
		{RestartPolicy{Name: "on-failure", MaxRetries: 2}, 1, 1, true},
		{RestartPolicy{Name: "on-failure", MaxRetries: 2}, 1, 2, false},
		{RestartPolicy{Name: "on-failure", MaxRetries: 2}, 0, 0, false},
	}
	for _, c := range cases {
		if got := c.policy.Restarts(c.code, c.restarts); got != c.want {
			t.Errorf("%+v exit %d after %d restarts: %v", c.policy, c.code, c.restarts, got)
		}
	}
}

func TestKillStops(t *testing.T) {
	c := &Container{}
	for sig, want := range map[string]bool{"KILL": true, "SIGTERM": true, "9": true, "15": true, "HUP": false, "USR1": false, "bogus": false} {
		if got := killStops(c, sig); got != want {
			t.Errorf("kill -s %s: %v", sig, got)
		}
	}
	c.Config.StopSignal = "SIGQUIT"
	if !killStops(c, "QUIT") || !killStops(c, "TERM") {
		t.Error("the stop signal does not count as a stop")
	}
}
