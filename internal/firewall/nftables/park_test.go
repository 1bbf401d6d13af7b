package nftables

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// park must keep the file open after the caller's close (so that close
// does not release it), and the kernel must release it soon after (no
// leak): a pipe's reader sees EOF only when the last reference to the
// write end is gone.
func TestParkReleasesLater(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fd, err := unix.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := park(fd)
	unix.Close(fd)
	// Before done, the message's reference keeps the write end open.
	rfd := int(r.Fd()) // (Fd makes the file blocking: once, before SetNonblock)
	if err := unix.SetNonblock(rfd, true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if n, err := unix.Read(rfd, buf); err != unix.EAGAIN {
		t.Fatalf("read before the cycle is unreachable: %d, %v (want EAGAIN: the write end must still be open)", n, err)
	}
	done()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := unix.Read(rfd, buf)
		if n == 0 && err == nil {
			return // EOF: the kernel released the parked reference
		}
		if time.Now().After(deadline) {
			t.Fatalf("write end still open 5 s after park's cycle became unreachable (read: %d, %v)", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
