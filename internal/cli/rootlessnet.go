package cli

import "fmt"

// rootlessDriverError refuses a network driver a rootless engine cannot
// use: macvlan and ipvlan interfaces hang off a host interface, and a
// rootless container's interfaces live in the rootless network
// namespace, where there is none (Podman accepts the network and fails
// at run).
func rootlessDriverError(rootless bool, driver string) error {
	if !rootless || (driver != "macvlan" && driver != "ipvlan") {
		return nil
	}
	return fmt.Errorf("%s networks need root: a rootless container's interfaces are in the rootless network namespace, which has no host interface for a %s parent (use a bridge network, or create the network as root)", driver, driver)
}
