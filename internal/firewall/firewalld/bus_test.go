package firewalld

import (
	"errors"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/google/go-cmp/cmp"
)

// decodeRules reads the shapes godbus gives a policy's a{sv} settings:
// a(ssss) as rows of any, as as strings.
func TestDecodeRules(t *testing.T) {
	got, err := decodeRules("p", map[string]dbus.Variant{
		"forward_ports": dbus.MakeVariant([][]any{{"8080", "tcp", "80", "10.88.0.2"}}),
		"rich_rules":    dbus.MakeVariant([]string{"rule x"}),
		"target":        dbus.MakeVariant("CONTINUE"),
	})
	want := Rules{ForwardPorts: []ForwardPort{{"8080", "tcp", "80", "10.88.0.2"}}, RichRules: []string{"rule x"}}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("decodeRules: %+v %v", got, err)
	}
	for _, bad := range []map[string]dbus.Variant{
		{"forward_ports": dbus.MakeVariant("8080")},
		{"forward_ports": dbus.MakeVariant([][]any{{"8080", "tcp", "80"}})},
		{"forward_ports": dbus.MakeVariant([][]any{{"8080", "tcp", "80", 1}})},
		{"rich_rules": dbus.MakeVariant(1)},
	} {
		if _, err := decodeRules("p", bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestSystemBusAddress(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	if _, err := SystemBusAddress(); !errors.Is(err, ErrNoBus) {
		t.Errorf("empty: %v, want ErrNoBus", err)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/x")
	if a, err := SystemBusAddress(); a != "unix:path=/x" || err != nil {
		t.Errorf("set: %q %v", a, err)
	}
}
