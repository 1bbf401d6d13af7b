package firewall

import "testing"

func TestFollowAcceptsOnlyStepsOfOwnCommits(t *testing.T) {
	g := func(ns uint64, id uint32) Generation { return Generation{NetNS: ns, ID: id} }
	cases := []struct {
		name          string
		at            Generation
		ok            bool
		before, after Generation
		commits       int
		want          bool
	}{
		{"one own commit", g(1, 5), true, g(1, 5), g(1, 6), 1, true},
		{"three own commits", g(1, 5), true, g(1, 5), g(1, 8), 3, true},
		{"no commit, nothing changed", g(1, 5), true, g(1, 5), g(1, 5), 0, true},
		{"a commit of another writer besides ours", g(1, 5), true, g(1, 5), g(1, 7), 1, false},
		{"another writer's commit and none of ours", g(1, 5), true, g(1, 5), g(1, 6), 0, false},
		{"another writer before the change began", g(1, 5), true, g(1, 6), g(1, 7), 1, false},
		{"already lost", g(1, 5), false, g(1, 5), g(1, 6), 1, false},
		{"an empty batch of ours (the kernel did not count it)", g(1, 5), true, g(1, 5), g(1, 5), 1, false},
		{"another namespace", g(1, 5), true, g(1, 5), g(2, 6), 1, false},
		{"wrapped around", g(1, 0xffffffff), true, g(1, 0xffffffff), g(1, 0), 1, true},
	}
	for _, c := range cases {
		got, ok := Follow(c.at, c.ok, c.before, c.after, c.commits)
		if ok != c.want || got != c.after {
			t.Errorf("%s: Follow = %v, %v; want %v, %v", c.name, got, ok, c.after, c.want)
		}
	}
}
