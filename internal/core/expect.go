package core

import "github.com/berthnet/berth/internal/firewall"

// FirewallPlan returns the firewall as berth's records describe it: the
// rules of every firewalled network with containers and every container's
// port forwards (on the network that carries them), for checks that
// compare it with what the host has. Records that cannot be read are
// skipped and returned as the error.
func (m *Manager) FirewallPlan() (nets []firewall.NetworkRules, ports []firewall.PortForward, err error) {
	sess, err := m.state.open()
	if err != nil {
		return nil, nil, err
	}
	defer sess.close()
	v, loadErr := m.firewallView(sess, "")
	return v.nets, v.ports, loadErr
}

// DNSPort returns the port the DNS server listens on.
func (m *Manager) DNSPort() uint16 { return m.cfg.DNSPort }
