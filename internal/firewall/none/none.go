// Package none is the firewall driver that programs nothing: for hosts whose
// firewall is managed by other means.
package none

import "github.com/berthnet/berth/internal/firewall"

// Driver adds no rules.
type Driver struct{}

var (
	_ firewall.Driver  = Driver{}
	_ firewall.Checker = Driver{}
)

// Name implements firewall.Driver.
func (Driver) Name() string { return firewall.DriverNone }

// Setup implements firewall.Driver; it does nothing.
func (Driver) Setup([]firewall.NetworkRules, []firewall.PortForward) error { return nil }

// Teardown implements firewall.Driver; it does nothing.
func (Driver) Teardown([]firewall.PortForward, []firewall.NetworkRules) error { return nil }

// Reset implements firewall.Driver; it does nothing.
func (Driver) Reset() error { return nil }

// HasNetwork implements firewall.Checker: no rules are expected, so none
// are missing.
func (Driver) HasNetwork(string) (bool, error) { return true, nil }

// HasForwards implements firewall.Checker; no forwards are expected.
func (Driver) HasForwards([]firewall.PortForward) error { return nil }
