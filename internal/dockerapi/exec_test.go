package dockerapi

import (
	"errors"
	"net/http/httptest"
	"testing"
)

func TestTermSize(t *testing.T) {
	for q, want := range map[string][2]uint16{"h=40&w=120": {40, 120}, "h=0&w=0": {0, 0}, "h=65535&w=1": {65535, 1}} {
		r := httptest.NewRequest("POST", "/exec/x/resize?"+q, nil)
		if rows, cols, err := termSize(r); err != nil || rows != want[0] || cols != want[1] {
			t.Errorf("%s: %d %d %v", q, rows, cols, err)
		}
	}
	for _, q := range []string{"", "h=40", "h=-1&w=2", "h=65536&w=2", "h=a&w=b"} {
		r := httptest.NewRequest("POST", "/exec/x/resize?"+q, nil)
		if _, _, err := termSize(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", q, err)
		}
	}
}

func TestExecResizeUnknown(t *testing.T) {
	_, sock := serve(t, &fakeBackend{})
	resp, err := unixClient(sock).Post("http://d/v1.41/exec/nosuch/resize?h=1&w=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("resize of an unknown exec: %d", resp.StatusCode)
	}
}
