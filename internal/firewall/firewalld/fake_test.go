package firewalld

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// fake is an in-memory firewalld: a permanent and a runtime configuration,
// where Reload replaces the runtime one by the permanent one (dropping
// runtime-only sources and policy entries, as firewalld does). It refuses
// what firewalld refuses and records every call that changes something.
type fake struct {
	permZones, zones       map[string][]string // zone -> sources
	permPolicies, policies map[string]*fakePolicy
	calls                  []string
	fail                   map[string]error // call text -> error
	stopped                bool             // firewalld is not on the bus
	strict                 *string          // StrictForwardPorts; nil: firewalld has none
}

type fakePolicy struct {
	Policy
	Rules
}

func newFake() *fake {
	builtin := map[string][]string{"public": nil, "trusted": nil}
	return &fake{
		permZones: builtin, zones: maps.Clone(builtin),
		permPolicies: map[string]*fakePolicy{}, policies: map[string]*fakePolicy{},
		fail: map[string]error{},
	}
}

var _ API = (*fake)(nil)

func (f *fake) record(format string, args ...any) error {
	c := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, c)
	return f.fail[c]
}

func (f *fake) Zones() ([]string, error)     { return slices.Sorted(maps.Keys(f.zones)), nil }
func (f *fake) ZoneNames() ([]string, error) { return slices.Sorted(maps.Keys(f.permZones)), nil }
func (f *fake) Policies() ([]string, error)  { return slices.Sorted(maps.Keys(f.policies)), nil }
func (f *fake) PolicyNames() ([]string, error) {
	return slices.Sorted(maps.Keys(f.permPolicies)), nil
}

func (f *fake) AddZone(name string) error {
	if err := f.record("addZone %s", name); err != nil {
		return err
	}
	if _, ok := f.permZones[name]; ok {
		return errors.New("NAME_CONFLICT")
	}
	f.permZones[name] = nil
	return nil
}

func (f *fake) AddPolicy(name string, p Policy) error {
	if err := f.record("addPolicy %s %s->%s %s masquerade=%v", name, p.Ingress, p.Egress, p.Target, p.Masquerade); err != nil {
		return err
	}
	if _, ok := f.permPolicies[name]; ok {
		return errors.New("NAME_CONFLICT")
	}
	f.permPolicies[name] = &fakePolicy{Policy: p}
	return nil
}

func (f *fake) Reload() error {
	if err := f.record("reload"); err != nil {
		return err
	}
	f.zones = map[string][]string{}
	for z, s := range f.permZones {
		f.zones[z] = slices.Clone(s)
	}
	f.policies = map[string]*fakePolicy{}
	for n, p := range f.permPolicies {
		c := *p
		f.policies[n] = &c
	}
	return nil
}

func (f *fake) ZoneOfSource(source string) (string, error) {
	for z, s := range f.zones {
		if slices.Contains(s, source) {
			return z, nil
		}
	}
	return "", nil
}

func (f *fake) Sources(zone string) ([]string, error) {
	s, ok := f.zones[zone]
	if !ok {
		return nil, errors.New("INVALID_ZONE: " + zone)
	}
	return slices.Clone(s), nil
}

func (f *fake) AddSource(zone, source string) error {
	if err := f.record("changeZoneOfSource %s %s", zone, source); err != nil {
		return err
	}
	if _, ok := f.zones[zone]; !ok {
		return errors.New("INVALID_ZONE: " + zone)
	}
	old, _ := f.ZoneOfSource(source)
	if old == zone {
		return errors.New("ZONE_ALREADY_SET")
	}
	if old != "" {
		f.zones[old] = slices.DeleteFunc(f.zones[old], func(s string) bool { return s == source })
	}
	f.zones[zone] = append(f.zones[zone], source)
	return nil
}

func (f *fake) RemoveSource(zone, source string) error {
	if err := f.record("removeSource %s %s", zone, source); err != nil {
		return err
	}
	if !slices.Contains(f.zones[zone], source) {
		return errors.New("UNKNOWN_SOURCE")
	}
	f.zones[zone] = slices.DeleteFunc(f.zones[zone], func(s string) bool { return s == source })
	return nil
}

func (f *fake) PolicyRules(policy string) (Rules, error) {
	p, ok := f.policies[policy]
	if !ok {
		return Rules{}, errors.New("INVALID_POLICY: " + policy)
	}
	return Rules{ForwardPorts: slices.Clone(p.ForwardPorts), RichRules: slices.Clone(p.RichRules)}, nil
}

func (f *fake) SetPolicyRules(policy string, r Rules) error {
	if err := f.record("setPolicySettings %s forward=%d rich=%d", policy, len(r.ForwardPorts), len(r.RichRules)); err != nil {
		return err
	}
	p, ok := f.policies[policy]
	if !ok {
		return errors.New("INVALID_POLICY: " + policy)
	}
	if p.Egress == "HOST" && (len(r.ForwardPorts) > 0 || slices.ContainsFunc(r.RichRules, func(s string) bool { return strings.Contains(s, "to-addr") })) {
		return errors.New("INVALID_FORWARD: a forward-port with to-addr is invalid for egress zone HOST")
	}
	p.Rules = Rules{ForwardPorts: slices.Clone(r.ForwardPorts), RichRules: slices.Clone(r.RichRules)}
	return nil
}

func (f *fake) PermanentSources(zone string) ([]string, error) {
	s, ok := f.permZones[zone]
	if !ok {
		return nil, errors.New("INVALID_ZONE: " + zone)
	}
	return slices.Clone(s), nil
}

func (f *fake) Running() bool { return !f.stopped }

func (f *fake) StrictForwardPorts() (string, bool) {
	if f.strict == nil {
		return "", false
	}
	return *f.strict, true
}
