package image_test

import (
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// TestStoreEvents: import, tag, untag and remove tell the store's
// event hook, in order.
func TestStoreEvents(t *testing.T) {
	s, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	s.SetEvents(func(e image.Event) { got = append(got, e.Action+" "+e.Name) })
	img := imagetest.BusyboxImage(t, s)
	if _, err := s.Tag(img.ID, "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove("localhost/second:latest", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(img.Names[0], false); err != nil {
		t.Fatal(err)
	}
	want := "import " + img.Names[0] + "|tag localhost/second:latest|untag localhost/second:latest|untag " + img.Names[0] + "|remove " + img.Names[0]
	if strings.Join(got, "|") != want {
		t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}
