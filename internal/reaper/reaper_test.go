package reaper

import "testing"

func TestRetiredNames(t *testing.T) {
	for _, idx := range []int{1, 255, 0x7fffffff} {
		n := RetiredName(idx)
		if len(n) > 15 {
			t.Errorf("RetiredName(%d) = %q: longer than a link name may be", idx, n)
		}
		if !IsRetired(n) {
			t.Errorf("IsRetired(%q) = false", n)
		}
	}
	for _, n := range []string{"eth0", "veth0123456789a", "brtgone", "brtgonexyz", "xbrtgone1"} {
		if IsRetired(n) {
			t.Errorf("IsRetired(%q) = true", n)
		}
	}
}

func TestMainArguments(t *testing.T) {
	if ok, _ := Main([]string{"berth-bridge"}); ok {
		t.Error("Main took a plugin's command line for a reaper's")
	}
	// A name that is not the index's retired name is refused before any
	// link is touched.
	if ok, code := Main([]string{"x", Flag, "5", "eth0"}); !ok || code == 0 {
		t.Errorf("Main with a foreign name: handled %v, code %d (want handled, non-zero)", ok, code)
	}
	if ok, code := Main([]string{"x", Flag, "5", RetiredName(6)}); !ok || code == 0 {
		t.Errorf("Main with a mismatched index: handled %v, code %d", ok, code)
	}
}
