// Package aardvarkconf reads and writes the aardvark-dns configuration
// directory byte-compatibly with netavark: one file per network whose first
// line lists the addresses to listen on (and the network's DNS servers), and
// one line per container:
//
//	10.89.0.1,fd10::1 10.123.0.2
//	<container id> <ipv4>[,...] <ipv6>[,...] <name>[,<alias>...][ <dns server>[,...]]
//
// An empty address column leaves two spaces in a row, as netavark writes it.
// Writers hold an exclusive flock on <config>/aardvark.lock, the lock file
// netavark uses, so berth and netavark never interleave their edits.
package aardvarkconf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/safefile"
)

// Header is the first line of a network file.
type Header struct {
	BindIPs    []netip.Addr
	DNSServers []netip.Addr
}

// Entry is one container line.
type Entry struct {
	ID         string
	IPv4       []netip.Addr
	IPv6       []netip.Addr
	Names      []string
	DNSServers []netip.Addr
}

// ParseError reports a malformed line with its file and line number.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

func joinAddrs(a []netip.Addr) string {
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

func parseAddrs(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, p := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", p)
		}
		out = append(out, a)
	}
	return out, nil
}

// String formats the header line (without newline).
func (h Header) String() string {
	s := joinAddrs(h.BindIPs)
	if len(h.DNSServers) > 0 {
		s += " " + joinAddrs(h.DNSServers)
	}
	return s
}

// String formats the container line (without newline).
func (e Entry) String() string {
	s := e.ID + " " + joinAddrs(e.IPv4) + " " + joinAddrs(e.IPv6) + " " + strings.Join(e.Names, ",")
	if len(e.DNSServers) > 0 {
		s += " " + joinAddrs(e.DNSServers)
	}
	return s
}

// printable reports whether s has no spaces or control characters.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// ParseHeader parses a first line.
func ParseHeader(line string) (Header, error) {
	f := strings.Split(strings.TrimRight(line, "\r"), " ")
	if len(f) > 2 {
		return Header{}, errors.New("first line: want '<listen ips>[ <dns servers>]'")
	}
	var h Header
	var err error
	if h.BindIPs, err = parseAddrs(f[0]); err != nil {
		return Header{}, fmt.Errorf("listen addresses: %w", err)
	}
	if len(f) == 2 {
		if h.DNSServers, err = parseAddrs(f[1]); err != nil {
			return Header{}, fmt.Errorf("dns servers: %w", err)
		}
	}
	return h, nil
}

// ParseEntry parses a container line.
func ParseEntry(line string) (Entry, error) {
	f := strings.Split(strings.TrimRight(line, "\r"), " ")
	if len(f) != 4 && len(f) != 5 {
		return Entry{}, fmt.Errorf("want 4 or 5 space-separated columns, got %d", len(f))
	}
	e := Entry{ID: f[0]}
	if e.ID == "" || !printable(e.ID) {
		return Entry{}, errors.New("empty or unprintable container id")
	}
	var err error
	if e.IPv4, err = parseAddrs(f[1]); err != nil {
		return Entry{}, fmt.Errorf("ipv4 column: %w", err)
	}
	if e.IPv6, err = parseAddrs(f[2]); err != nil {
		return Entry{}, fmt.Errorf("ipv6 column: %w", err)
	}
	for _, n := range strings.Split(f[3], ",") {
		if n == "" {
			continue
		}
		if !printable(n) {
			return Entry{}, fmt.Errorf("name %q has spaces or control characters", n)
		}
		e.Names = append(e.Names, strings.ToLower(n))
	}
	if len(e.Names) == 0 {
		return Entry{}, errors.New("no names")
	}
	if len(f) == 5 {
		if e.DNSServers, err = parseAddrs(f[4]); err != nil {
			return Entry{}, fmt.Errorf("dns server column: %w", err)
		}
	}
	return e, nil
}

// File is one parsed network file.
type File struct {
	Header  Header
	Entries []Entry
}

// Parse reads a network file. name is used in error messages.
func Parse(r io.Reader, name string) (*File, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	f := &File{}
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			h, err := ParseHeader(line)
			if err != nil {
				return nil, &ParseError{File: name, Line: n, Msg: err.Error()}
			}
			f.Header = h
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := ParseEntry(line)
		if err != nil {
			return nil, &ParseError{File: name, Line: n, Msg: err.Error()}
		}
		f.Entries = append(f.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if n == 0 {
		return nil, &ParseError{File: name, Line: 1, Msg: "empty file"}
	}
	return f, nil
}

// Bytes formats the whole file.
func (f *File) Bytes() []byte {
	var b strings.Builder
	b.WriteString(f.Header.String())
	b.WriteByte('\n')
	for _, e := range f.Entries {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Dir is an aardvark-dns config directory (<config>/aardvark-dns).
type Dir struct {
	Path string
}

// LockPath is the lock netavark takes around edits: <config>/aardvark.lock.
func (d Dir) LockPath() string { return filepath.Join(filepath.Dir(d.Path), "aardvark.lock") }

// PidFileName is the name of the file in the directory where aardvark-dns
// records its PID; netavark and Podman read it there.
const PidFileName = "aardvark.pid"

// EscapeSuffix ends the file name of a network whose name is a file the
// directory reserves: the network "aardvark.pid" (a valid Podman network
// name) is stored as "aardvark.pid%net", so its file is not the pid file.
// Network names cannot contain '%', so no other network has this name;
// aardvark-dns reads such a file as a network of that name, which serves
// the same containers.
const EscapeSuffix = "%net"

// InternalSuffix ends the file name of an internal network (netavark ≥
// 1.11 writes it so): aardvark-dns answers a container that is only on
// internal networks NXDOMAIN for names it does not know, never forwarding.
const InternalSuffix = "%int"

// FileName returns the name of the network's file in the directory.
func FileName(network string) string {
	if network == PidFileName {
		return network + EscapeSuffix
	}
	return network
}

// NetworkName returns the network a file name in the directory is for
// (the inverse of FileName), and false for files that are not network
// files: the pid file and hidden files (temporary files, berth's control
// socket).
func NetworkName(file string) (string, bool) {
	if file == PidFileName || file == "" || strings.HasPrefix(file, ".") {
		return "", false
	}
	return strings.TrimSuffix(file, EscapeSuffix), true
}

// PidFile is where aardvark-dns records its PID.
func (d Dir) PidFile() string { return filepath.Join(d.Path, PidFileName) }

func (d Dir) lock() (func(), error) {
	f, err := os.OpenFile(d.LockPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", d.LockPath(), err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", d.LockPath(), err)
	}
	return func() { f.Close() }, nil
}

func (d Dir) file(network string) string { return filepath.Join(d.Path, FileName(network)) }

// ReadFile parses the network file at path; a file that is not a regular
// file, or is larger than safefile.DefaultLimit, is an error, never a hang.
func ReadFile(path string) (*File, error) {
	b, err := safefile.Read(path, safefile.DefaultLimit)
	if err != nil {
		return nil, err
	}
	return Parse(bytes.NewReader(b), path)
}

func (d Dir) read(network string) (*File, error) { return ReadFile(d.file(network)) }

func (d Dir) write(network string, f *File) error {
	return d.replace(FileName(network), f.Bytes())
}

// replace makes b the content of the file name in the directory: a new
// file renamed over the old, so readers see the old or the new content,
// and a symbolic link or FIFO in its place is replaced, not written
// through.
func (d Dir) replace(name string, b []byte) error {
	path := filepath.Join(d.Path, name)
	tmp, err := os.CreateTemp(d.Path, "."+name+".tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WritePid records pid in the pid file (by replace).
func (d Dir) WritePid(pid int) error {
	return d.replace(PidFileName, []byte(strconv.Itoa(pid)))
}

// Add writes the entries into the network files, creating files and the
// directory as needed (the parent must exist, as with netavark). The header
// is rewritten from h, so DNS servers set by a later container take effect;
// an entry with the same container ID replaces the old one.
func (d Dir) Add(entries map[string]Entry, headers map[string]Header) error {
	if err := os.Mkdir(d.Path, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("create aardvark-dns directory: %w", err)
	}
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	for netName, e := range entries {
		if ok, err := d.appendEntry(netName, e, headers[netName]); err != nil {
			return err
		} else if ok {
			continue
		}
		f, err := d.read(netName)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			f = &File{}
		}
		f.Header = headers[netName]
		kept := f.Entries[:0]
		for _, old := range f.Entries {
			if old.ID != e.ID {
				kept = append(kept, old)
			}
		}
		f.Entries = append(kept, e)
		if err := d.write(netName, f); err != nil {
			return err
		}
	}
	return nil
}

// appendEntry adds e at the end of an existing file whose header is
// already h and that has no entry for e's container: one write, no rewrite
// of the other entries (as netavark does). It reports whether it did so.
func (d Dir) appendEntry(netName string, e Entry, h Header) (bool, error) {
	// Not through a symbolic link, never blocking on a FIFO, and only a
	// regular file of sane size; anything else is rewritten (or
	// reported) by the caller.
	f, err := os.OpenFile(d.file(netName), os.O_RDWR|os.O_APPEND|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() > safefile.DefaultLimit {
		return false, nil
	}
	b, err := io.ReadAll(io.LimitReader(f, safefile.DefaultLimit+1))
	if err != nil || len(b) > safefile.DefaultLimit {
		return false, nil
	}
	head, _, _ := strings.Cut(string(b), "\n")
	if len(b) == 0 || b[len(b)-1] != '\n' || head != h.String() || strings.Contains(string(b), "\n"+e.ID+" ") {
		return false, nil
	}
	if _, err := f.WriteString(e.String() + "\n"); err != nil {
		return false, fmt.Errorf("append to %s: %w", d.file(netName), err)
	}
	return true, nil
}

// Remove drops the container's entries from the named network files; a file
// left with only its header is deleted. Missing files are not an error.
// It reports whether any network file is left in the directory.
func (d Dir) Remove(containerID string, networks []string) (bool, error) {
	unlock, err := d.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	var errs []error
	for _, netName := range networks {
		f, err := d.read(netName)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			// A broken file: drop our lines textually so the others stay.
			errs = append(errs, d.removeLines(netName, containerID))
			continue
		}
		kept := f.Entries[:0]
		for _, e := range f.Entries {
			if e.ID != containerID {
				kept = append(kept, e)
			}
		}
		f.Entries = kept
		if len(f.Entries) == 0 {
			if err := os.Remove(d.file(netName)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		errs = append(errs, d.write(netName, f))
	}
	left, _ := d.Networks()
	return len(left) > 0, errors.Join(errs...)
}

func (d Dir) removeLines(netName, id string) error {
	b, err := safefile.Read(d.file(netName), safefile.DefaultLimit)
	if err != nil {
		return err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, id+" ") {
			out = append(out, l)
		}
	}
	return d.replace(FileName(netName), []byte(strings.Join(out, "\n")))
}

// UpdateServers rewrites the DNS-server column of a network's header. It
// reports whether the file exists.
func (d Dir) UpdateServers(netName string, servers []netip.Addr) (bool, error) {
	unlock, err := d.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	f, err := d.read(netName)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	f.Header.DNSServers = servers
	return true, d.write(netName, f)
}

// Networks lists the networks that have a file in the directory.
func (d Dir) Networks() ([]string, error) {
	ents, err := os.ReadDir(d.Path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n, ok := NetworkName(e.Name()); ok && !e.IsDir() {
			out = append(out, n)
		}
	}
	return out, nil
}

// Read parses one network file.
func (d Dir) Read(netName string) (*File, error) { return d.read(netName) }
