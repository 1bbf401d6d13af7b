package core

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
)

func TestNewFirewall(t *testing.T) {
	for name, want := range map[string]string{"": "nftables", "nftables": "nftables", "NFTables": "nftables", "none": "none", "iptables": "iptables", "firewalld": "firewalld"} {
		if want == "iptables" {
			if _, err := exec.LookPath("iptables-save"); err != nil {
				continue
			}
		}
		d, err := NewFirewall(name, nil)
		if err != nil || d.Name() != want {
			t.Errorf("%q: %v %v, want driver %s", name, d, err, want)
		}
	}
	for _, name := range []string{"pf", "ufw"} {
		_, err := NewFirewall(name, nil)
		if !errors.Is(err, firewall.ErrUnknownDriver) || !strings.Contains(err.Error(), "want nftables, iptables, firewalld or none") || !strings.Contains(err.Error(), name) {
			t.Errorf("%q: %v", name, err)
		}
	}
}
