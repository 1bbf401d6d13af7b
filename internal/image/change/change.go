// Package change applies Dockerfile instructions given as --change values
// (berth import --change 'CMD ["httpd","-f"]') to an OCI image
// configuration: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
// VOLUME and WORKDIR, in JSON (exec) and shell forms. It is pure logic.
package change

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrInvalid wraps every rejected instruction.
var ErrInvalid = errors.New("invalid change")

// Supported lists the instructions Apply knows.
var Supported = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// Apply applies each change to cfg, in order. An instruction and its value
// are separated by white space or "=" (CMD=/bin/sh, as Podman accepts).
func Apply(cfg *v1.Config, changes []string) error {
	for _, c := range changes {
		if err := applyOne(cfg, c); err != nil {
			return fmt.Errorf("%w %q: %w", ErrInvalid, c, err)
		}
	}
	return nil
}

// applyOne applies a single instruction to cfg.
func applyOne(cfg *v1.Config, c string) error {
	c = strings.TrimSpace(c)
	i := strings.IndexAny(c, " \t=")
	if i < 0 {
		return fmt.Errorf("instruction %s needs a value", strings.ToUpper(c))
	}
	instr, val := strings.ToUpper(c[:i]), strings.TrimSpace(c[i+1:])
	switch instr {
	case "CMD":
		cfg.Cmd = command(val)
	case "ENTRYPOINT":
		cfg.Entrypoint = command(val)
	case "ENV":
		return applyEnv(cfg, val)
	case "LABEL":
		return applyLabel(cfg, val)
	case "EXPOSE":
		return applyExpose(cfg, val)
	case "STOPSIGNAL":
		s, err := ParseSignal(val)
		if err != nil {
			return err
		}
		cfg.StopSignal = s
	case "USER":
		if val == "" {
			return errors.New("USER needs a user name or UID")
		}
		cfg.User = val
	case "WORKDIR":
		return applyWorkdir(cfg, val)
	case "VOLUME":
		return applyVolume(cfg, val)
	default:
		return fmt.Errorf("instruction %s is not supported, valid: %s", instr, strings.Join(Supported, ", "))
	}
	return nil
}

// applyEnv sets each KEY=value (or KEY value) of an ENV instruction.
func applyEnv(cfg *v1.Config, val string) error {
	kvs, err := pairs(val, "ENV")
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
	}
	return nil
}

// applyLabel sets each key=value of a LABEL instruction.
func applyLabel(cfg *v1.Config, val string) error {
	kvs, err := pairs(val, "LABEL")
	if err != nil {
		return err
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for _, kv := range kvs {
		cfg.Labels[kv[0]] = kv[1]
	}
	return nil
}

// applyExpose adds each port (or port range) of an EXPOSE instruction.
func applyExpose(cfg *v1.Config, val string) error {
	words, err := split(val)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		return errors.New("EXPOSE needs at least one port")
	}
	for _, w := range words {
		ports, err := ParsePort(w)
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	return nil
}

// applyWorkdir sets the working directory; a relative path is taken
// from the current one.
func applyWorkdir(cfg *v1.Config, val string) error {
	if val == "" {
		return errors.New("WORKDIR needs a path")
	}
	if !path.IsAbs(val) {
		base := cfg.WorkingDir
		if base == "" {
			base = "/"
		}
		val = path.Join(base, val)
	}
	cfg.WorkingDir = path.Clean(val)
	return nil
}

// applyVolume adds the absolute paths of a VOLUME instruction, given as
// a JSON list or separated by white space.
func applyVolume(cfg *v1.Config, val string) error {
	var vols []string
	if list, ok := jsonList(val); ok {
		vols = list
	} else {
		w, err := split(val)
		if err != nil {
			return err
		}
		vols = w
	}
	if len(vols) == 0 {
		return errors.New("VOLUME needs at least one path")
	}
	if cfg.Volumes == nil {
		cfg.Volumes = map[string]struct{}{}
	}
	for _, v := range vols {
		if !path.IsAbs(v) {
			return fmt.Errorf("VOLUME %q is not an absolute path", v)
		}
		cfg.Volumes[path.Clean(v)] = struct{}{}
	}
	return nil
}

// command parses the exec form ["a","b"] or the shell form, which runs
// under /bin/sh -c.
func command(val string) []string {
	if list, ok := jsonList(val); ok {
		return list
	}
	if val == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", val}
}

func jsonList(val string) ([]string, bool) {
	if !strings.HasPrefix(val, "[") {
		return nil, false
	}
	var list []string
	if err := json.Unmarshal([]byte(val), &list); err != nil {
		return nil, false
	}
	return list, true
}

// pairs parses "k=v k2='v 2'" or the legacy "k value with spaces".
func pairs(val, instr string) ([][2]string, error) {
	words, err := split(val)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s needs KEY=VALUE", instr)
	}
	if !strings.Contains(words[0], "=") {
		// Legacy form: the first word is the key, the rest the value.
		key, rest, _ := strings.Cut(val, " ")
		rest = strings.TrimSpace(rest)
		if r, err := split(rest); err == nil && len(r) == 1 {
			rest = r[0]
		}
		if instr == "ENV" && rest == "" {
			return nil, fmt.Errorf("ENV %s needs a value (ENV KEY=VALUE or ENV KEY VALUE)", key)
		}
		return [][2]string{{key, rest}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", instr, w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// split splits s into words at unquoted white space; '...' and "..."
// quote, a backslash escapes the next character (outside single quotes).
func split(s string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		in    bool
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == 0 && (r == ' ' || r == '\t' || r == '\n'):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		case quote == 0 && (r == '"' || r == '\''):
			quote, in = r, true
		case quote != 0 && r == quote:
			quote = 0
		case r == '\\' && quote != '\'' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// ParsePort parses an EXPOSE value: 80, 80/tcp, 53/udp, 8000-8002/sctp,
// into "port/proto" keys.
func ParsePort(s string) ([]string, error) {
	p, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("EXPOSE %q: protocol must be tcp, udp or sctp", s)
	}
	lo, hi, isRange := strings.Cut(p, "-")
	first, err := port(lo)
	if err != nil {
		return nil, fmt.Errorf("EXPOSE %q: %w", s, err)
	}
	last := first
	if isRange {
		if last, err = port(hi); err != nil {
			return nil, fmt.Errorf("EXPOSE %q: %w", s, err)
		}
		if last < first {
			return nil, fmt.Errorf("EXPOSE %q: range end is below its start", s)
		}
	}
	var out []string
	for n := first; n <= last; n++ {
		out = append(out, strconv.Itoa(n)+"/"+proto)
	}
	return out, nil
}

func port(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

var signals = map[string]bool{
	"HUP": true, "INT": true, "QUIT": true, "ILL": true, "TRAP": true, "ABRT": true, "IOT": true,
	"BUS": true, "FPE": true, "KILL": true, "USR1": true, "SEGV": true, "USR2": true, "PIPE": true,
	"ALRM": true, "TERM": true, "STKFLT": true, "CHLD": true, "CLD": true, "CONT": true, "STOP": true,
	"TSTP": true, "TTIN": true, "TTOU": true, "URG": true, "XCPU": true, "XFSZ": true, "VTALRM": true,
	"PROF": true, "WINCH": true, "IO": true, "POLL": true, "PWR": true, "SYS": true,
}

// ParseSignal validates a STOPSIGNAL value: a name (SIGTERM, TERM,
// RTMIN+3) or a number from 1 to 64. Names come back with the SIG prefix.
func ParseSignal(s string) (string, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return "", fmt.Errorf("STOPSIGNAL %d: signal numbers go from 1 to 64", n)
		}
		return s, nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if signals[name] {
		return "SIG" + name, nil
	}
	for _, base := range []string{"RTMIN", "RTMAX"} {
		if rest, ok := strings.CutPrefix(name, base); ok {
			if rest == "" {
				return "SIG" + name, nil
			}
			if n, err := strconv.Atoi(rest); err == nil && n >= -30 && n <= 30 {
				return "SIG" + name, nil
			}
		}
	}
	return "", fmt.Errorf("STOPSIGNAL %q is not a signal name (SIGTERM, KILL, ...) or number", s)
}
