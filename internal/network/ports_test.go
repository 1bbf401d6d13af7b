package network

import (
	"slices"
	"testing"
)

func TestExpandPorts(t *testing.T) {
	got := ExpandPorts(
		PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "TCP"},
		PortMapping{HostPort: 5000, ContainerPort: 6000, Range: 3, Protocol: "udp"},
		PortMapping{ContainerPort: 53, Range: 2, Protocol: ""},
	)
	want := []PortMapping{
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Range: 1, Protocol: "tcp"},
		{HostPort: 5000, ContainerPort: 6000, Range: 1, Protocol: "udp"},
		{HostPort: 5001, ContainerPort: 6001, Range: 1, Protocol: "udp"},
		{HostPort: 5002, ContainerPort: 6002, Range: 1, Protocol: "udp"},
		{HostPort: 0, ContainerPort: 53, Range: 1, Protocol: ""},
		{HostPort: 0, ContainerPort: 54, Range: 1, Protocol: ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ExpandPorts:\n got %v\nwant %v", got, want)
	}
	if ExpandPorts() != nil {
		t.Error("no mappings should expand to nothing")
	}
	// The last port of the port space is not wrapped past.
	if got := ExpandPorts(PortMapping{HostPort: 65535, ContainerPort: 65535, Protocol: "tcp"}); len(got) != 1 || got[0].HostPort != 65535 {
		t.Errorf("single top port: %v", got)
	}
}
