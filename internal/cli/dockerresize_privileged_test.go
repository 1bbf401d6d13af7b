package cli

import (
	"bufio"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// TestPrivilegedDockerResize: the resize endpoints change the size of a
// container's terminal (docker run -it, docker attach) and of an exec
// session's (docker exec -it), as the programs inside see it.
func TestPrivilegedDockerResize(t *testing.T) {
	p := newDockerTopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.BannerImage(t, s)
	c, err := client.New(client.WithHost("unix://" + p.sock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	p.mustD(t, "run", "-d", "-t", "-i", "--name", "term", "--network", "none", "banner", "sh")
	if _, err := c.ContainerResize(ctx, "term", client.ContainerResizeOptions{Height: 40, Width: 120}); err != nil {
		t.Fatal(err)
	}
	if out := p.mustD(t, "exec", "term", "busybox", "stty", "-F", "/dev/console", "size"); out != "40 120" {
		t.Errorf("container terminal after resize: %q", out)
	}

	// An exec session: the size at its start, then a resize the shell sees.
	ex, err := c.ExecCreate(ctx, "term", client.ExecCreateOptions{
		TTY: true, AttachStdin: true, AttachStdout: true, ConsoleSize: client.ConsoleSize{Height: 30, Width: 100},
		Cmd: []string{"sh", "-c", "busybox stty size; while read x; do busybox stty size; done"},
	})
	if err != nil {
		t.Fatal(err)
	}
	at, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: true, ConsoleSize: client.ConsoleSize{Height: 30, Width: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(at.Reader)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
	}()
	// await reads lines until want, sending a newline now and then (runc
	// copies the size on its own time after the resize).
	await := func(want string, poke bool) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		var seen []string
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("exec output ended before %q: %q", want, seen)
				}
				if l == want {
					return
				}
				seen = append(seen, l)
			case <-tick.C:
				if poke {
					_, _ = at.Conn.Write([]byte("\n"))
				}
			case <-deadline:
				t.Fatalf("no %q from the exec session: %q", want, seen)
			}
		}
	}
	await("30 100", false)
	if _, err := c.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Height: 50, Width: 132}); err != nil {
		t.Fatal(err)
	}
	await("50 132", true)
	at.Close()
	p.mustD(t, "rm", "-f", "term")
	if _, err := c.ContainerResize(ctx, "term", client.ContainerResizeOptions{Height: 1, Width: 1}); err == nil {
		t.Error("resize of a removed container: no error")
	}
	p.assertClean(t)
}
