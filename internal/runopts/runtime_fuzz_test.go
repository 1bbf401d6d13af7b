package runopts

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseSize: no value panics; an accepted size is not negative and a
// plain number of bytes parses to itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64m", "1.5g", "1024", "2GiB", "1 k", "1x", "", "9e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("%q: %d", s, n)
		}
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && v != n {
			t.Fatalf("%q: %d", s, n)
		}
	})
}

// FuzzParseSysctl: an accepted sysctl is a namespaced one with no path
// tricks, and KEY=VALUE gives back KEY and VALUE.
func FuzzParseSysctl(f *testing.F) {
	for _, s := range []string{"net.ipv4.ip_forward=1", "kernel.shmmax=1", "fs.mqueue.msg_max=2", "a=b", "net.=1", "net.a/b=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := ParseSysctl(s)
		if err != nil {
			return
		}
		if !SysctlNet(k) && !SysctlIPC(k) || k+"="+v != s || strings.ContainsAny(k, "/\x00 \t\n") || strings.Contains(k, "..") {
			t.Fatalf("%q: %q %q", s, k, v)
		}
	})
}

// FuzzParseUlimit: an accepted ulimit has soft <= hard (-1 unlimited)
// and no value below -1.
func FuzzParseUlimit(f *testing.F) {
	for _, s := range []string{"nofile=1024", "nofile=1:2", "core=-1", "nproc=1:-1", "x=1", "nofile=2:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUlimit(s)
		if err != nil {
			return
		}
		if u.Soft < -1 || u.Hard < -1 || u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard) {
			t.Fatalf("%q: %+v", s, u)
		}
	})
}

// FuzzParseDevice: an accepted device has absolute paths and
// permissions made of r, w, m once each.
func FuzzParseDevice(f *testing.F) {
	for _, s := range []string{"/dev/null", "/dev/null:r", "/dev/a:/dev/b:rw", "x", "/a:rwx", "/a:/b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDevice(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(d.Source, "/") || !strings.HasPrefix(d.Destination, "/") || !validDeviceMode(d.Permissions) {
			t.Fatalf("%q: %+v", s, d)
		}
	})
}

// FuzzParseEnvFile: no content panics; every entry is KEY=VALUE with a
// key free of white space and '=', each key once.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n#c\nB\n", "  X=y z\n", "=a", "A B=1", "P*\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ParseEnvFile(s, []string{"B=2", "P1=x"})
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range es {
			k, _, ok := strings.Cut(e, "=")
			if !ok || k == "" || strings.ContainsAny(k, " \t") || seen[k] {
				t.Fatalf("%q: %q", s, es)
			}
			seen[k] = true
		}
	})
}

// FuzzParseSecurityOpt: no value panics; only the two supported options
// change anything.
func FuzzParseSecurityOpt(f *testing.F) {
	for _, s := range []string{"no-new-privileges", "no-new-privileges=true", "label=disable", "seccomp=x", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r Runtime
		if err := ParseSecurityOpt(s, &r); err != nil && (r.NoNewPrivileges || r.LabelDisable) {
			t.Fatalf("%q: refused but applied", s)
		}
		if !strings.HasPrefix(s, "no-new-privileges") && !strings.HasPrefix(s, "label") && (r.NoNewPrivileges || r.LabelDisable) {
			t.Fatalf("%q: %+v", s, r)
		}
	})
}
