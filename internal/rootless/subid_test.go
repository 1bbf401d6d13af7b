package rootless

import (
	"reflect"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	content := "# comment\nalice:100000:65536\nbob:200000:65536\n1001:300000:1000\nalice:400000:10\nbroken:line\nalice:x:5\nalice:5:0\n"
	got := ParseSubIDs(content, "alice", 1000)
	want := []IDRange{{100000, 65536}, {400000, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("alice: %v, want %v", got, want)
	}
	if got := ParseSubIDs(content, "carol", 1001); !reflect.DeepEqual(got, []IDRange{{300000, 1000}}) {
		t.Errorf("by uid: %v", got)
	}
	if got := ParseSubIDs(content, "nobody", 9); got != nil {
		t.Errorf("nobody: %v", got)
	}
}

func TestMapArgs(t *testing.T) {
	got := MapArgs(1000, []IDRange{{100000, 65536}, {400000, 10}})
	want := []string{"0", "1000", "1", "1", "100000", "65536", "65537", "400000", "10"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
	if !Mapped(5, []IDRange{{100000, 65536}}) || Mapped(65537, []IDRange{{100000, 65536}}) || !Mapped(0, nil) || Mapped(5, nil) {
		t.Error("Mapped")
	}
}

func TestParseIDMap(t *testing.T) {
	m, err := ParseIDMap("         0       1000          1\n         1     100000      65536\n")
	if err != nil {
		t.Fatal(err)
	}
	if !InMap(m, 0) || !InMap(m, 5) || !InMap(m, 65536) || InMap(m, 65537) {
		t.Errorf("InMap over %v", m)
	}
	if _, err := ParseIDMap("0 1000\n"); err == nil {
		t.Error("a short line parsed")
	}
}
