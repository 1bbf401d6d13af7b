package cli

import (
	"strings"
	"testing"
)

func TestNeedsUserNS(t *testing.T) {
	for args, want := range map[string]bool{
		"":                              false,
		"version":                       false,
		"--help":                        false,
		"run --help":                    false,
		"-v":                            false,
		"completion bash":               false,
		"run -d img":                    true,
		"--root /x ps":                  true,
		"--log-level debug network ls":  true,
		"--log-level=debug version":     false,
		"--network-config-dir /v run x": true,
		"run --rm img sh -c --help":     true, // the container's argument
		"network ls -h":                 false,
		"--root /x network ls":          true,
		"bogus":                         false,
	} {
		if got := needsUserNS(strings.Fields(args)); got != want {
			t.Errorf("needsUserNS(%q) = %v, want %v", args, got, want)
		}
	}
}

func TestRootlessRuntimeDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := rootlessRuntimeDir(env(map[string]string{"XDG_RUNTIME_DIR": "/run/user/7"}), 7); got != "/run/user/7" {
		t.Errorf("XDG_RUNTIME_DIR: %s", got)
	}
	if got := rootlessRuntimeDir(env(nil), 4242424); !strings.HasSuffix(got, "/berth-run-4242424") {
		t.Errorf("fallback: %s", got)
	}
}
