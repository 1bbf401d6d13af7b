package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

// One host port published twice (-p 8080:80 -p 8080:81) is refused at
// create, naming the port and both container ports, and nothing is
// stored.
func TestCreateRefusesAHostPortTwice(t *testing.T) {
	e := newTestEngine(t)
	netb, _ := runopts.ParseNetworks(nil)
	var ports []network.PortMapping
	for _, p := range []string{"8080:80", "8080:81/tcp"} {
		pm, err := runopts.ParsePublish(p)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, pm...)
	}
	_, _, err := e.Create(CreateOptions{Rootfs: t.TempDir(), Args: []string{"x"}, Net: netb, Ports: ports})
	if !errors.Is(err, network.ErrInvalid) || !strings.Contains(err.Error(), "host port 8080/tcp (all addresses) is published twice: to container port 80 (mapping 0) and to container port 81 (mapping 1)") {
		t.Fatalf("got %v", err)
	}
	if all, _ := e.List(); len(all) != 0 {
		t.Errorf("the refused create left %d records", len(all))
	}
}
