// Package hostsfile builds a container's /etc/hosts the way Podman 4.3's
// libnetwork/etchosts does: --add-host entries, then the base file, then
// localhost, host.containers.internal and one line per container address.
// It is pure: callers read the base file and write the result.
package hostsfile

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Entry is one line: an address and its names.
type Entry struct {
	IP    string
	Names []string
}

// Params is the input of Build.
type Params struct {
	// Extra are the --add-host entries (host-gateway already resolved).
	Extra []Entry
	// Base is the base hosts file (normally the host's /etc/hosts).
	Base []byte
	// HostContainersInternal is the address of host.containers.internal;
	// "" leaves the entry out.
	HostContainersInternal string
	// Container are the container's own entries: address, hostname, name.
	Container []Entry
}

// Build returns the file. An entry is written only when none of its names
// is already in the file, so the base file and --add-host win.
func Build(p Params) []byte {
	var b bytes.Buffer
	seen := map[string]bool{}
	add := func(e Entry) {
		var names []string
		for _, n := range e.Names {
			if n == "" || seen[n] {
				continue
			}
			dup := false
			for _, m := range names {
				dup = dup || m == n
			}
			if !dup {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return
		}
		for _, n := range names {
			seen[n] = true
		}
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(names, " "))
	}
	for _, e := range p.Extra {
		add(e)
	}
	sc := bufio.NewScanner(bytes.NewReader(p.Base))
	for sc.Scan() {
		line := sc.Text()
		b.WriteString(line)
		b.WriteByte('\n')
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		for _, n := range f[min(1, len(f)):] {
			seen[n] = true
		}
	}
	if !seen["localhost"] {
		add(Entry{IP: "127.0.0.1", Names: []string{"localhost"}})
		fmt.Fprintf(&b, "::1\tlocalhost\n")
	}
	if p.HostContainersInternal != "" {
		add(Entry{IP: p.HostContainersInternal, Names: []string{"host.containers.internal"}})
	}
	for _, e := range p.Container {
		// The container's own names are written for each of its addresses.
		var names []string
		for _, n := range e.Names {
			if n != "" && !contains(names, n) {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(names, " "))
		}
	}
	return b.Bytes()
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
