package runopts

// --health-cmd and the other healthcheck flags, parsed as Podman 4.3
// parses them.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Healthcheck is a container's healthcheck: Test is ["CMD", argv...] or
// ["CMD-SHELL", script] (or ["NONE"]: none).
type Healthcheck struct {
	Test        []string      `json:"test"`
	Interval    time.Duration `json:"interval"`
	Timeout     time.Duration `json:"timeout"`
	StartPeriod time.Duration `json:"start_period"`
	Retries     int           `json:"retries"`
}

// HealthFlags are the healthcheck flags as given ("" for the defaults:
// interval 30s, timeout 30s, start period 0s, 3 retries).
type HealthFlags struct {
	Cmd, Interval, Timeout, StartPeriod string
	Retries                             uint
}

// ParseHealthcheck turns the flags into a Healthcheck, nil when there is
// no command or it is "none". A JSON array is the command's words (CMD or
// CMD-SHELL first, or a plain argv); other text is a shell script
// (CMD-SHELL), as Podman reads --health-cmd.
func ParseHealthcheck(f HealthFlags) (*Healthcheck, error) {
	if f.Cmd == "" {
		return nil, nil
	}
	test, err := healthTest(f.Cmd)
	if err != nil || test[0] == "NONE" {
		return nil, err
	}
	hc := &Healthcheck{Test: test, Retries: int(f.Retries)}
	interval := cmpOr(f.Interval, "30s")
	if interval == "disable" {
		interval = "0"
	}
	if hc.Interval, err = time.ParseDuration(interval); err != nil {
		return nil, fmt.Errorf("invalid healthcheck-interval: %w", err)
	}
	if hc.Interval < 0 {
		return nil, errors.New("healthcheck-interval must be 0 (disabled) or more")
	}
	if f.Retries < 1 {
		return nil, errors.New("healthcheck-retries must be greater than 0")
	}
	if hc.Timeout, err = time.ParseDuration(cmpOr(f.Timeout, "30s")); err != nil {
		return nil, fmt.Errorf("invalid healthcheck-timeout: %w", err)
	}
	if hc.Timeout < time.Second {
		return nil, errors.New("healthcheck-timeout must be at least 1 second")
	}
	if hc.StartPeriod, err = time.ParseDuration(cmpOr(f.StartPeriod, "0s")); err != nil {
		return nil, fmt.Errorf("invalid healthcheck-start-period: %w", err)
	}
	if hc.StartPeriod < 0 {
		return nil, errors.New("healthcheck-start-period must be 0 seconds or greater")
	}
	return hc, nil
}

// healthTest reads --health-cmd into a Test.
func healthTest(cmd string) ([]string, error) {
	var words []string
	isArray := json.Unmarshal([]byte(cmd), &words) == nil
	if !isArray {
		words = strings.SplitN(cmd, " ", 2)
	}
	if len(words) == 0 || words[0] == "" {
		return nil, errors.New("must define a healthcheck command for all healthchecks")
	}
	switch {
	case strings.EqualFold(words[0], "none"):
		return []string{"NONE"}, nil
	case words[0] == "CMD":
		if !isArray {
			words = strings.Fields(cmd)
		}
		if len(words) < 2 {
			return nil, errors.New("must define a healthcheck command for all healthchecks")
		}
		return words, nil
	case words[0] == "CMD-SHELL":
		if len(words) < 2 || strings.TrimSpace(strings.Join(words[1:], " ")) == "" {
			return nil, errors.New("must define a healthcheck command for all healthchecks")
		}
		return []string{"CMD-SHELL", strings.Join(words[1:], " ")}, nil
	case isArray && len(words) > 1:
		return append([]string{"CMD"}, words...), nil
	default:
		return []string{"CMD-SHELL", strings.Join(words, " ")}, nil
	}
}

// Argv is the command a check runs.
func (h *Healthcheck) Argv() []string {
	if h.Test[0] == "CMD-SHELL" {
		return []string{"/bin/sh", "-c", h.Test[1]}
	}
	return h.Test[1:]
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
