package iptables

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// builtinChains lists the built-in chains of each table in the order
// iptables-save prints them.
var builtinChains = map[string][]string{
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"nat":      {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":      {"PREROUTING", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

// ruleset is the state of the tables of one address family, as
// iptables-save prints it.
type ruleset struct {
	tables map[string]*table
}

// table is one table of a ruleset.
type table struct {
	name   string
	chains map[string]*chain
}

// chain is one chain and its rules, each in normalized iptables-save form
// (the text after "-A <chain> ").
type chain struct {
	name    string
	builtin bool
	policy  string // policy of a built-in chain
	rules   []string
}

func newRuleset() *ruleset { return &ruleset{tables: map[string]*table{}} }

// table returns the named table, adding it with its built-in chains when
// the ruleset has none: iptables-save omits tables that were never used.
func (rs *ruleset) table(name string) *table {
	t := rs.tables[name]
	if t == nil {
		t = &table{name: name, chains: map[string]*chain{}}
		for _, c := range builtinChains[name] {
			t.chains[c] = &chain{name: c, builtin: true, policy: "ACCEPT"}
		}
		rs.tables[name] = t
	}
	return t
}

// chain returns the named chain of a table, or nil.
func (rs *ruleset) chain(tbl, name string) *chain {
	if t := rs.tables[tbl]; t != nil {
		return t.chains[name]
	}
	return nil
}

func isBuiltin(tbl, name string) bool {
	for _, c := range builtinChains[tbl] {
		if c == name {
			return true
		}
	}
	return false
}

// clone returns a deep copy.
func (rs *ruleset) clone() *ruleset {
	out := newRuleset()
	for tn, t := range rs.tables {
		nt := &table{name: tn, chains: map[string]*chain{}}
		for cn, c := range t.chains {
			nc := *c
			nc.rules = append([]string(nil), c.rules...)
			nt.chains[cn] = &nc
		}
		out.tables[tn] = nt
	}
	return out
}

// has reports whether the chain holds the rule.
func (c *chain) has(spec string) bool { return c.index(spec) >= 0 }

func (c *chain) index(spec string) int {
	for i, r := range c.rules {
		if r == spec {
			return i
		}
	}
	return -1
}

// referenced reports whether a rule of the table jumps to the chain.
func (t *table) referenced(name string) bool {
	for _, c := range t.chains {
		for _, r := range c.rules {
			if jumpTarget(r) == name {
				return true
			}
		}
	}
	return false
}

// normalize collapses the white space of a rule spec, so that specs read
// from iptables-save compare equal to generated ones.
func normalize(spec string) string { return strings.Join(strings.Fields(spec), " ") }

// jumpTarget returns the target of a rule spec (the word after -j or -g).
func jumpTarget(spec string) string {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

// sourcePrefix returns the -s match of a rule spec, if any.
func sourcePrefix(spec string) (netip.Prefix, bool) {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-s" && (i == 0 || f[i-1] != "!") {
			p, err := netip.ParsePrefix(f[i+1])
			return p, err == nil
		}
	}
	return netip.Prefix{}, false
}

// parseSave reads the output of iptables-save (or ip6tables-save).
func parseSave(b []byte) (*ruleset, error) {
	rs := newRuleset()
	var cur *table
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		// With -c, rules start with their counters: "[p:b] -A ...".
		if strings.HasPrefix(line, "[") {
			if i := strings.Index(line, "]"); i > 0 {
				line = strings.TrimSpace(line[i+1:])
			}
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			name := line[1:]
			cur = &table{name: name, chains: map[string]*chain{}}
			rs.tables[name] = cur
		case line == "COMMIT":
			cur = nil
		case cur == nil:
			return nil, fmt.Errorf("parse iptables-save line %d: %q outside a table", n, line)
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				return nil, fmt.Errorf("parse iptables-save line %d: bad chain %q", n, line)
			}
			cur.chains[f[0]] = &chain{name: f[0], builtin: f[1] != "-", policy: f[1]}
		case strings.HasPrefix(line, "-A "):
			f := strings.SplitN(line[3:], " ", 2)
			c := cur.chains[f[0]]
			if c == nil {
				return nil, fmt.Errorf("parse iptables-save line %d: rule of undeclared chain %s", n, f[0])
			}
			spec := ""
			if len(f) == 2 {
				spec = normalize(f[1])
			}
			c.rules = append(c.rules, spec)
		default:
			return nil, fmt.Errorf("parse iptables-save line %d: unexpected %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read iptables-save output: %w", err)
	}
	return rs, nil
}

// sortedChains returns the chains of a table in iptables-save order:
// built-in chains first, then the others sorted by name.
func (t *table) sortedChains() []*chain {
	var out, user []*chain
	for _, name := range builtinChains[t.name] {
		if c := t.chains[name]; c != nil {
			out = append(out, c)
		}
	}
	for _, c := range t.chains {
		if !isBuiltin(t.name, c.name) {
			user = append(user, c)
		}
	}
	sort.Slice(user, func(i, j int) bool { return user[i].name < user[j].name })
	return append(out, user...)
}

// render prints the named tables as iptables-save does, without counters
// and comment lines; a table the ruleset lacks is printed with its
// built-in chains only.
func (rs *ruleset) render(tables ...string) string {
	var b strings.Builder
	for _, tn := range tables {
		t := rs.tables[tn]
		if t == nil {
			t = newRuleset().table(tn)
		}
		chains := t.sortedChains()
		fmt.Fprintf(&b, "*%s\n", tn)
		for _, c := range chains {
			if c.builtin {
				fmt.Fprintf(&b, ":%s %s [0:0]\n", c.name, c.policy)
			} else {
				fmt.Fprintf(&b, ":%s - [0:0]\n", c.name)
			}
		}
		for _, c := range chains {
			for _, r := range c.rules {
				fmt.Fprintf(&b, "-A %s %s\n", c.name, r)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}
