package build

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Style is the shape of a build's progress output.
type Style int

const (
	// Podman prints "STEP 1/5: FROM ...", "--> ID" and "COMMIT name".
	Podman Style = iota
	// Docker prints the classic builder's "Step 1/5 : FROM ..." and
	// " ---> ID" lines.
	Docker
)

// printer writes the progress of a build.
type printer struct {
	w     io.Writer
	style Style
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (p printer) step(n, total int, text string) {
	if p.style == Docker {
		fmt.Fprintf(p.w, "Step %d/%d : %s\n", n, total, text)
		return
	}
	fmt.Fprintf(p.w, "STEP %d/%d: %s\n", n, total, text)
}

func (p printer) from(id string) {
	if p.style == Docker && id != "" {
		fmt.Fprintf(p.w, " ---> %s\n", short(id))
	}
}

// cached reports a step from the cache (committed prints its ID).
func (p printer) cached(id string) {
	if p.style == Docker {
		fmt.Fprint(p.w, " ---> Using cache\n")
		return
	}
	fmt.Fprintf(p.w, "--> Using cache %s\n", id)
}

func (p printer) running(ctr string) {
	if p.style == Docker {
		fmt.Fprintf(p.w, " ---> Running in %s\n", short(ctr))
	}
}

func (p printer) removed(ctr string) {
	if p.style == Docker {
		fmt.Fprintf(p.w, "Removing intermediate container %s\n", short(ctr))
	}
}

// committed reports a step's image; the last step of a Podman build
// says COMMIT and the first name first.
func (p printer) committed(id string, last bool, names []string) {
	if p.style == Docker {
		fmt.Fprintf(p.w, " ---> %s\n", short(id))
		return
	}
	if last {
		fmt.Fprintf(p.w, "COMMIT %s\n", strings.Join(names[:min(len(names), 1)], ""))
	}
	fmt.Fprintf(p.w, "--> %s\n", short(id))
}

// done ends the build: its ID and names.
func (p printer) done(id string, names []string) {
	if p.style == Docker {
		fmt.Fprintf(p.w, "Successfully built %s\n", short(id))
	}
	for _, n := range names {
		fmt.Fprintf(p.w, "Successfully tagged %s\n", n)
	}
}

// RunError is a RUN whose command failed.
type RunError struct {
	Command []string
	Code    int
	style   Style
}

func (e *RunError) Error() string {
	if e.style == Docker {
		return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.Command, " "), e.Code)
	}
	return fmt.Sprintf("building at RUN %s: exit status %s", strings.Join(e.Command, " "), strconv.Itoa(e.Code))
}
