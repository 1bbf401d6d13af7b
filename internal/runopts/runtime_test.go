package runopts

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeCapabilities(t *testing.T) {
	got, err := NormalizeCapabilities([]string{"net_admin", "CAP_SYS_TIME", "all", "Cap_Kill"})
	if err != nil || strings.Join(got, " ") != "CAP_NET_ADMIN CAP_SYS_TIME ALL CAP_KILL" {
		t.Errorf("%v %v", got, err)
	}
	if _, err := NormalizeCapabilities([]string{"foo"}); err == nil || err.Error() != `"CAP_FOO": unknown capability` {
		t.Errorf("foo: %v", err)
	}
}

func TestMergeCapabilities(t *testing.T) {
	base := []string{"CAP_CHOWN", "CAP_KILL", "CAP_SETUID"}
	all := AllCapabilities[:3]
	for _, tc := range []struct {
		adds, drops []string
		want, err   string
	}{
		{want: "CAP_CHOWN CAP_KILL CAP_SETUID"},
		{adds: []string{"CAP_NET_ADMIN"}, drops: []string{"CAP_KILL"}, want: "CAP_CHOWN CAP_NET_ADMIN CAP_SETUID"},
		{drops: []string{"ALL"}, adds: []string{"CAP_NET_RAW"}, want: "CAP_NET_RAW"},
		{drops: []string{"ALL"}, want: ""},
		{adds: []string{"ALL"}, drops: []string{"CAP_CHOWN"}, want: "CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH"},
		{adds: []string{"ALL"}, drops: []string{"ALL"}, err: "adding all caps and removing all caps not allowed"},
		{adds: []string{"CAP_KILL"}, drops: []string{"CAP_KILL"}, err: `capability "CAP_KILL" cannot be dropped and added`},
	} {
		got, err := MergeCapabilities(base, all, tc.adds, tc.drops)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%v %v: %v, want %s", tc.adds, tc.drops, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%v %v: %v %v, want %s", tc.adds, tc.drops, got, err, tc.want)
		}
	}
}

func TestParseSecurityOpt(t *testing.T) {
	var r Runtime
	for _, s := range []string{"no-new-privileges", "label=disable", "seccomp=unconfined", "apparmor=unconfined", "seccomp:unconfined"} {
		if err := ParseSecurityOpt(s, &r); err != nil {
			t.Fatal(s, err)
		}
	}
	if !r.NoNewPrivileges || !r.LabelDisable {
		t.Errorf("%+v", r)
	}
	if err := ParseSecurityOpt("no-new-privileges=false", &r); err != nil || r.NoNewPrivileges {
		t.Errorf("=false: %v %v", err, r.NoNewPrivileges)
	}
	for s, want := range map[string]string{
		"seccomp=/etc/prof.json":  `--security-opt "seccomp=/etc/prof.json": berth does not support this security option yet`,
		"apparmor=my-profile":     `--security-opt "apparmor=my-profile": berth does not support this security option yet`,
		"label=type:foo_t":        `--security-opt "label=type:foo_t": berth does not support this security option yet`,
		"foo=bar":                 `invalid --security-opt 2: "foo=bar"`,
		"no-new-privileges=maybe": `invalid --security-opt 2: "no-new-privileges=maybe"`,
	} {
		if err := ParseSecurityOpt(s, &r); err == nil || err.Error() != want {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{
		"1024": 1024, "1b": 1, "1k": 1024, "1kb": 1024, "64m": 64 << 20, "64M": 64 << 20, "1g": 1 << 30,
		"1.5g": 3 << 29, "2GiB": 2 << 30, "1 k": 1024, "1t": 1 << 40,
	} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "1x", "k", "-1", "1.", ".5m", "1e3", "1bb", "0x10", "1kk", "99999999999p"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := ParseSize("1x"); err == nil || err.Error() != "invalid size: '1x'" {
		t.Errorf("1x: %v", err)
	}
}

func TestParseResources(t *testing.T) {
	r, err := ParseResources("64m", "128m", 1.5, 512, 100)
	if err != nil || r.Memory != 64<<20 || r.MemorySwap != 128<<20 || r.CPUQuota != 150000 || r.CPUPeriod != 100000 || r.CPUShares != 512 || r.PidsLimit != 100 {
		t.Errorf("%+v %v", r, err)
	}
	if _, err := ParseResources("", "", 0.001, 0, 0); err == nil || err.Error() != "CPU cfs quota cannot be less than 1ms (i.e. 1000)" {
		t.Errorf("--cpus 0.001: %v", err)
	}
	if r, err := ParseResources("", "", 0, 0, 0); err != nil || r.Any() {
		t.Errorf("none: %+v %v", r, err)
	}
	if r, err := ParseResources("64m", "-1", 0, 0, -1); err != nil || r.MemorySwap != -1 || r.PidsLimit != -1 {
		t.Errorf("unlimited: %+v %v", r, err)
	}
	for _, tc := range []struct {
		mem, swap string
		cpus      float64
		pids      int64
		want      string
	}{
		{mem: "1x", want: "invalid value for memory: invalid size: '1x'"},
		{mem: "1k", want: "minimum memory limit allowed is 6MB"},
		{swap: "10m", want: "you should always set a memory limit when using a memoryswap limit, see usage"},
		{mem: "10m", swap: "5m", want: "minimum memoryswap limit should be larger than memory limit, see usage"},
		{cpus: -1, want: "--cpus -1: must be 0 or more"},
		{pids: -2, want: "--pids-limit -2: must be -1 (unlimited) or more"},
	} {
		if _, err := ParseResources(tc.mem, tc.swap, tc.cpus, 0, tc.pids); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

func TestParseSysctl(t *testing.T) {
	for s, want := range map[string]string{
		"net.ipv4.ip_forward=1": "net.ipv4.ip_forward", "kernel.shmmax=1024": "kernel.shmmax",
		"fs.mqueue.msg_max=20": "fs.mqueue.msg_max", "net.ipv4.ping_group_range=0 100": "net.ipv4.ping_group_range",
	} {
		if k, _, err := ParseSysctl(s); err != nil || k != want {
			t.Errorf("%s: %s %v", s, k, err)
		}
	}
	for s, want := range map[string]string{
		"foo.bar=1":           "sysctl 'foo.bar' is not allowed",
		"kernel.hostname=x":   "sysctl 'kernel.hostname' is not allowed",
		"net.ipv4.ip_forward": "net.ipv4.ip_forward is invalid, sysctl values must be in the form of KEY=VALUE",
		"kernel.shmmax =1":    "'kernel.shmmax =1' is invalid, extra spaces found",
		"net.=1":              "sysctl 'net.' is not allowed",
		"net.a/../b=1":        "sysctl 'net.a/../b' is not allowed",
	} {
		if _, _, err := ParseSysctl(s); err == nil || err.Error() != want {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestParseUlimit(t *testing.T) {
	for s, want := range map[string]Ulimit{
		"nofile=1024":     {"nofile", 1024, 1024},
		"nofile=512:1024": {"nofile", 512, 1024},
		"core=-1":         {"core", -1, -1},
		"nproc=100:-1":    {"nproc", 100, -1},
		"memlock=-1:-1":   {"memlock", -1, -1},
	} {
		if u, err := ParseUlimit(s); err != nil || u != want {
			t.Errorf("%s: %+v %v", s, u, err)
		}
	}
	for s, want := range map[string]string{
		"foo=1":        "invalid ulimit type: foo",
		"nofile=10:5":  "ulimit soft limit must be less than or equal to hard limit: 10 > 5",
		"nofile":       "invalid ulimit argument: nofile",
		"nofile=a":     `strconv.ParseInt: parsing "a": invalid syntax`,
		"nofile=1:2:3": "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`",
	} {
		_, err := ParseUlimit(s)
		full := "ulimit option " + `"` + s + `"` + " requires name=SOFT:HARD, failed to be parsed: " + want
		if err == nil || err.Error() != full {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for s, want := range map[string]Device{
		"/dev/null":             {"/dev/null", "/dev/null", "rwm"},
		"/dev/null:r":           {"/dev/null", "/dev/null", "r"},
		"/dev/null:/dev/foo":    {"/dev/null", "/dev/foo", "rwm"},
		"/dev/null:/dev/foo:rw": {"/dev/null", "/dev/foo", "rw"},
		"/dev/fuse:/dev/fuse:m": {"/dev/fuse", "/dev/fuse", "m"},
	} {
		if d, err := ParseDevice(s); err != nil || d != want {
			t.Errorf("%s: %+v %v", s, d, err)
		}
	}
	for s, want := range map[string]string{
		"/dev/null:rwx":    "invalid device mode: rwx",
		"/dev/null:rr":     "invalid device mode: rr",
		"/dev/null:x:rw":   "invalid device mode: x",
		"/dev/null:/a:rwq": "invalid device mode: rwq",
		"/a:/b:r:w":        "invalid device specification: /a:/b:r:w",
		"null":             `invalid device "null": the host path must be absolute`,
	} {
		if _, err := ParseDevice(s); err == nil || err.Error() != want {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	content := "# comment\n\n  A=1\nB= two words \nA=3\nHOSTVAR\nMISSING\nPRE*\nE=\n"
	got, err := ParseEnvFile(content, []string{"HOSTVAR=h", "PRE_X=1", "PRE_Y=2", "OTHER=o"})
	want := []string{"A=3", "B= two words ", "HOSTVAR=h", "PRE_X=1", "PRE_Y=2", "E="}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("%q %v", got, err)
	}
	for c, msg := range map[string]string{
		"=A\n":    `invalid environment variable: "=A"`,
		"A B=1\n": `name "A B" has white spaces, poorly formatted name`,
	} {
		if _, err := ParseEnvFile(c, nil); err == nil || err.Error() != msg {
			t.Errorf("%q: %v", c, err)
		}
	}
}

func TestParseLabelFile(t *testing.T) {
	got, err := ParseLabelFile("# x\na=1\n b = 2\nc\n")
	if err != nil || len(got) != 3 || got["a"] != "1" || got["b "] != " 2" || got["c"] != "" {
		t.Errorf("%q %v", got, err)
	}
	if _, err := ParseLabelFile("=x\n"); err == nil {
		t.Error("empty key accepted")
	}
}

func TestParseMemoryReservationAndShmSize(t *testing.T) {
	r := Resources{Memory: 64 << 20}
	if err := ParseMemoryReservation("32m", &r); err != nil || r.MemoryReservation != 32<<20 {
		t.Errorf("32m: %v %d", err, r.MemoryReservation)
	}
	if err := ParseMemoryReservation("128m", &r); err == nil || !strings.Contains(err.Error(), "cannot be less than memory reservation") {
		t.Errorf("reservation above the limit: %v", err)
	}
	if err := ParseMemoryReservation("1x", &Resources{}); err == nil || !strings.Contains(err.Error(), "invalid value for memory-reservation") {
		t.Errorf("1x: %v", err)
	}
	if err := ParseMemoryReservation("1g", &Resources{}); err != nil {
		t.Errorf("1g without --memory: %v", err)
	}
	if !(Resources{MemoryReservation: 1}).Any() {
		t.Error("a reservation alone is not a limit")
	}
	for in, want := range map[string]int64{"128m": 128 << 20, "0": 0, "1000": 1000, "1.5k": 1536} {
		if got, err := ParseShmSize(in); err != nil || got == nil || *got != want {
			t.Errorf("ParseShmSize(%q) = %v, %v; want %d", in, got, err, want)
		}
	}
	if got, err := ParseShmSize(""); got != nil || err != nil {
		t.Errorf(`ParseShmSize("") = %v, %v`, got, err)
	}
	if _, err := ParseShmSize("-1"); err == nil {
		t.Error("--shm-size -1 accepted")
	}
}

func TestParseAnnotations(t *testing.T) {
	m, err := ParseAnnotations([]string{"a=b", "io.x/y=1=2", "empty="})
	if err != nil || len(m) != 3 || m["a"] != "b" || m["io.x/y"] != "1=2" || m["empty"] != "" {
		t.Errorf("%v %v", m, err)
	}
	if m, err := ParseAnnotations(nil); m != nil || err != nil {
		t.Errorf("none: %v %v", m, err)
	}
	for _, bad := range []string{"novalue", "=v"} {
		if _, err := ParseAnnotations([]string{bad}); err == nil || !strings.Contains(err.Error(), "must be formatted KEY=VALUE") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
