package dockerapi

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseFilters(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Filters
		err  bool
	}{
		{raw: ``, want: Filters{}},
		{raw: `{"label":{"a=b":true,"c":true,"off":false}}`, want: Filters{"label": {"a=b", "c"}}},
		{raw: `{"name":["x","y"]}`, want: Filters{"name": {"x", "y"}}},
		{raw: `{"bogus":["x"]}`, err: true},
		{raw: `{"name":"x"}`, err: true},
		{raw: `[1]`, err: true},
	} {
		got, err := ParseFilters(tc.raw, "label", "name")
		if tc.err {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", tc.raw, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.raw, got, err, tc.want)
		}
	}
}

func FuzzParseFilters(f *testing.F) {
	f.Add(`{"label":{"a=b":true}}`)
	f.Add(`{"name":["x"]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		fs, err := ParseFilters(raw, "label", "name", "driver")
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error not ErrInvalid: %v", err)
		}
		for k := range fs {
			if k != "label" && k != "name" && k != "driver" {
				t.Fatalf("unexpected key %q", k)
			}
		}
	})
}

func TestMatchLabels(t *testing.T) {
	l := map[string]string{"a": "1", "b": ""}
	if !matchLabels(l, []string{"a", "a=1", "b"}) || matchLabels(l, []string{"a=2"}) || matchLabels(l, []string{"c"}) {
		t.Fatal("matchLabels wrong")
	}
}
