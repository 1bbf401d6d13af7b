package berthnet_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"

	"github.com/berthnet/berth/berthnet"
)

// Define networks and list them; this needs no privileges.
func Example() {
	dir, err := os.MkdirTemp("", "berthnet-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	h, err := berthnet.New(berthnet.Config{StateDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	web, err := h.CreateNetwork(berthnet.Network{
		Name:    "web",
		Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.18.7.0/24"), Gateway: netip.MustParseAddr("198.18.7.1")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", web.Name, "on bridge", web.Interface)

	_, err = h.CreateNetwork(berthnet.Network{Name: "web"})
	fmt.Println("again:", err)

	_, err = h.CreateNetwork(berthnet.Network{Name: "bad", Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.18.8.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}}})
	fmt.Println("bad:", err)

	nets, err := h.Networks()
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range nets {
		fmt.Println(n.Name, n.Driver, n.Subnets[0].Prefix, n.Subnets[0].Gateway)
	}
	// Output:
	// created web on bridge berth-web
	// again: create network web: already exists
	// bad: network bad.subnets[0].gateway: 10.0.0.1 is not in subnet 198.18.8.0/24
	// web bridge 198.18.7.0/24 198.18.7.1
}

// Attach a container's network namespace, publish a port, list, detach.
// Attach and Detach need root (CAP_NET_ADMIN); the example is compiled but
// not run by go test.
func ExampleHost_Attach() {
	h, err := berthnet.New(berthnet.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	web, err := h.Network("web")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	a, err := h.Attach(ctx, web, berthnet.AttachOptions{
		ContainerID: "c1",
		Netns:       "/run/netns/c1",
		Ports:       []berthnet.PortMapping{{HostPort: 8080, ContainerPort: 80}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Interface, a.Addresses, a.Gateways)

	all, _ := h.Attachments()
	fmt.Println(len(all), "attached")

	if err := h.Detach(ctx, "c1", "eth0"); err != nil {
		log.Fatal(err)
	}
}
