package engine

import (
	"os"
	"strings"
	"testing"
)

// TestOpenPTY: what the slave side writes comes out of the master side
// (with the terminal's CRLF); the slave is a terminal, a plain reader is
// not.
func TestOpenPTY(t *testing.T) {
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		t.Skip("no /dev/ptmx")
	}
	master, slave, err := openPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if !isTerminal(slave) || isTerminal(strings.NewReader("")) {
		t.Error("isTerminal")
	}
	if _, err := slave.WriteString("hi\n"); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	buf := make([]byte, 16)
	n, err := master.Read(buf)
	if err != nil || string(buf[:n]) != "hi\r\n" {
		t.Errorf("read %q %v", buf[:n], err)
	}
}
