package engine

import (
	"slices"
	"testing"
)

// ReadHostLinks reads (never changes) the calling namespace: it has a
// loopback link, and loopback addresses are left out.
func TestReadHostLinks(t *testing.T) {
	hl, err := ReadHostLinks()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(hl.Names, "lo") {
		t.Errorf("links %v without lo", hl.Names)
	}
	for _, p := range hl.Prefix {
		if p.Addr().IsLoopback() || p.Addr().IsLinkLocalUnicast() {
			t.Errorf("loopback or link-local prefix %v listed", p)
		}
	}
}
