package iptables

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthnet/berth/internal/firewall"
)

// TestPrivilegedAcceptsBesideDocker loads Docker's rules into a fresh
// namespace with each backend's iptables-restore, adds and removes berth's
// accept rules, and checks what iptables-save reads back: the rules in
// DOCKER-USER as planned, and after the removal Docker's rules as they
// were, byte for byte.
func TestPrivilegedAcceptsBesideDocker(t *testing.T) {
	privileged(t)
	n1 := firewall.NetworkRules{ID: strings.Repeat("c", 64), Bridge: "bacc1", Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.5.0/24")}}
	n2 := firewall.NetworkRules{ID: strings.Repeat("d", 64), Bridge: "bacc2", Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.6.0/24")}}
	for _, b := range backends {
		for _, save := range []string{"docker-20.10.iptables-save", "docker-28.iptables-save"} {
			t.Run(b.name+"/"+save, func(t *testing.T) {
				e := kernelEnv(t, b)
				if _, err := e.d.run(b.restore, nil, []byte(golden(t, save))); err != nil {
					t.Fatalf("load Docker's rules: %v", err)
				}
				read := func() *ruleset {
					out, err := e.d.run(b.save, nil, nil)
					if err != nil {
						t.Fatal(err)
					}
					rs, err := parseSave(out)
					if err != nil {
						t.Fatal(err)
					}
					return rs
				}
				before := read().render("raw", tableFilter, tableNAT)
				a := e.d.Accepts(true)
				must(t, "ensure", a.Ensure([]firewall.NetworkRules{n1, n2}))
				got := read().chain(tableFilter, chainDockerUser).rules
				want := append(acceptRules(n1, ipv4, true), acceptRules(n2, ipv4, true)...)
				if strings.HasPrefix(save, "docker-20.10") {
					want = append(want, "-j RETURN")
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("DOCKER-USER as iptables-save reads it (-want +got):\n%s", diff)
				}
				if missing, err := a.Missing([]firewall.NetworkRules{n1, n2}); err != nil || missing {
					t.Errorf("missing after ensure: %v, %v", missing, err)
				}
				e.noop(t, "ensure again", func() error { return a.Ensure([]firewall.NetworkRules{n1, n2}) })
				must(t, "remove n1", a.Remove([]string{n1.ID}))
				if got := read().chain(tableFilter, chainDockerUser).rules; len(got) != len(want)-2 || strings.Contains(strings.Join(got, "\n"), n1.Bridge) {
					t.Errorf("after removing n1: %q", got)
				}
				must(t, "remove n2", a.Remove([]string{n2.ID}))
				if diff := cmp.Diff(before, read().render("raw", tableFilter, tableNAT)); diff != "" {
					t.Errorf("Docker's rules after berth's are gone (-before +after):\n%s", diff)
				}
			})
		}
	}
}
