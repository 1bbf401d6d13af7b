package hostsfile

import "testing"

func TestBuild(t *testing.T) {
	got := string(Build(Params{
		Extra:                  []Entry{{IP: "198.19.0.9", Names: []string{"db"}}},
		Base:                   []byte("127.0.0.1\tlocalhost\n# comment\n198.19.0.9 db\n"),
		HostContainersInternal: "10.88.0.1",
		Container:              []Entry{{IP: "10.88.0.5", Names: []string{"e188cc149b5c", "web"}}},
	}))
	want := "198.19.0.9\tdb\n127.0.0.1\tlocalhost\n# comment\n198.19.0.9 db\n10.88.0.1\thost.containers.internal\n10.88.0.5\te188cc149b5c web\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// No base file: localhost lines are added; hostname equal to name is
	// written once.
	got = string(Build(Params{Container: []Entry{{IP: "127.0.0.1", Names: []string{"web", "web"}}}}))
	want = "127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.0.1\tweb\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// host.containers.internal from the base file is not repeated.
	got = string(Build(Params{Base: []byte("1.2.3.4 host.containers.internal localhost\n"), HostContainersInternal: "10.88.0.1"}))
	if got != "1.2.3.4 host.containers.internal localhost\n" {
		t.Errorf("got %q", got)
	}
}
