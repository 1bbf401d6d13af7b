package slirp4netns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/berthnet/berth/internal/usernet"
)

// maxRequest is slirp4netns's request size limit: a request must be
// shorter than this.
const maxRequest = 4096

// forwarder is what the API drives: usernet.Stack in production, a fake in
// tests.
type forwarder interface {
	AddForward(usernet.Forward) (usernet.Forward, error)
	RemoveForward(id int) error
	Forwards() []usernet.Forward
}

// apiError renders slirp4netns's error object.
func apiError(desc string) []byte {
	b, _ := json.Marshal(map[string]map[string]string{"error": {"desc": desc}})
	return b
}

type entry struct {
	ID        int    `json:"id"`
	Proto     string `json:"proto"`
	HostAddr  string `json:"host_addr"`
	HostPort  int    `json:"host_port"`
	GuestAddr string `json:"guest_addr"`
	GuestPort int    `json:"guest_port"`
}

// handle answers one API request with the bytes slirp4netns 1.2 would
// send: {"return":{...}}, {"entries":[...]} for list_hostfwd, or
// {"error":{"desc":"bad request: ..."}}.
func handle(fw forwarder, req []byte, log *slog.Logger) []byte {
	var top any
	if err := json.Unmarshal(req, &top); err != nil {
		return apiError("bad request: cannot parse JSON")
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return apiError("bad request: json_object() failed")
	}
	execute, ok := obj["execute"].(string)
	if !ok {
		return apiError("bad request: no execute found")
	}
	args, _ := obj["arguments"].(map[string]any)
	switch execute {
	case "add_hostfwd":
		return addHostfwd(fw, args, log)
	case "list_hostfwd":
		entries := []entry{}
		for _, f := range fw.Forwards() {
			entries = append(entries, entry{
				ID: f.ID, Proto: f.Proto,
				HostAddr: f.HostAddr.String(), HostPort: int(f.HostPort),
				GuestAddr: f.GuestAddr.String(), GuestPort: int(f.GuestPort),
			})
		}
		b, _ := json.Marshal(map[string][]entry{"entries": entries})
		return b
	case "remove_hostfwd":
		id, _ := number(args, "id")
		if err := fw.RemoveForward(int(id)); err != nil {
			if errors.Is(err, usernet.ErrForwardNotFound) {
				return apiError("bad request: remove_hostfwd: bad arguments.id")
			}
			log.Error("remove_hostfwd", "id", id, "err", err)
			return apiError("bad request: remove_hostfwd: slirp_remove_hostfwd failed")
		}
		return []byte(`{"return":{}}`)
	}
	return apiError("bad request: unknown execute")
}

// number returns a JSON number argument truncated to an integer, as
// parson's json_object_dotget_number does (0 when missing or not a number).
func number(args map[string]any, key string) (float64, bool) {
	v, ok := args[key].(float64)
	if !ok {
		return 0, false
	}
	return math.Trunc(v), true
}

func port(args map[string]any, key string) (uint16, bool) {
	v, _ := number(args, key)
	if v <= 0 || v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

func addHostfwd(fw forwarder, args map[string]any, log *slog.Logger) []byte {
	const prefix = "bad request: add_hostfwd: "
	var f usernet.Forward
	switch p, _ := args["proto"].(string); p {
	case "tcp", "udp":
		f.Proto = p
	default:
		return apiError(prefix + "bad arguments.proto")
	}
	hostAddr, _ := args["host_addr"].(string)
	if hostAddr == "" {
		hostAddr = "0.0.0.0"
	}
	// slirp4netns takes IPv4 only; berth also accepts an IPv6 host address.
	a, err := netip.ParseAddr(hostAddr)
	if err != nil || a.Zone() != "" {
		return apiError(prefix + "bad arguments.host_addr")
	}
	f.HostAddr = a
	var ok bool
	if f.HostPort, ok = port(args, "host_port"); !ok {
		return apiError(prefix + "bad arguments.host_port")
	}
	// berth's extension: a guest in another namespace (the container of a
	// rootless bridge network), reached by kernel sockets there.
	f.NetNS, _ = args["berth_netns"].(string)
	if gw, _ := args["berth_gateway"].(string); gw != "" {
		g, err := netip.ParseAddr(gw)
		if err != nil {
			return apiError(prefix + "bad arguments.berth_gateway")
		}
		f.Gateway = g
	}
	if guestAddr, _ := args["guest_addr"].(string); guestAddr != "" {
		g, err := netip.ParseAddr(guestAddr)
		if err != nil || (!g.Is4() && f.NetNS == "") {
			return apiError(prefix + "bad arguments.guest_addr")
		}
		f.GuestAddr = g
	}
	if f.GuestPort, ok = port(args, "guest_port"); !ok {
		return apiError(prefix + "bad arguments.guest_port")
	}
	added, err := fw.AddForward(f)
	if err != nil {
		// slirp4netns says no more than this; the reason goes to the log.
		log.Error("add_hostfwd failed", "err", err)
		return apiError(prefix + "slirp_add_hostfwd failed")
	}
	return fmt.Appendf(nil, `{"return":{"id":%d}}`, added.ID)
}

// Limits of the API server: connections served at once, how long a
// client may take to send its request (and to read the answer), and for a
// client beyond the limit, how long it may take to send its request
// before it is told (one of at most maxRefusing at once).
const (
	maxConns       = 256
	apiIOTimeout   = 5 * time.Second
	maxRefusing    = 16
	refuseDeadline = 200 * time.Millisecond
)

// apiServer serves the API socket. Every connection is served on its own
// goroutine, so a client that connects and sends nothing holds up no
// other; the requests themselves reach the forwarder one at a time, as in
// slirp4netns.
type apiServer struct {
	fw        forwarder
	log       *slog.Logger
	slots     chan struct{} // one token per connection being served
	refusing  chan struct{} // one token per connection being refused
	ioTimeout time.Duration
	mu        sync.Mutex // held while a request runs
}

func newAPIServer(fw forwarder, log *slog.Logger) *apiServer {
	return &apiServer{fw: fw, log: log, slots: make(chan struct{}, maxConns), refusing: make(chan struct{}, maxRefusing), ioTimeout: apiIOTimeout}
}

// ServeAPI answers slirp4netns API requests (add_hostfwd, list_hostfwd,
// remove_hostfwd) for st on ln, one per connection, until ln closes; berth's
// pasta serves the same API on request (--api-socket, a berth extension).
func ServeAPI(ln net.Listener, st *usernet.Stack, log *slog.Logger) { serveAPI(ln, st, log) }

// serveAPI answers requests on ln, one per connection, until ln closes.
func serveAPI(ln net.Listener, fw forwarder, log *slog.Logger) {
	newAPIServer(fw, log).serve(ln)
}

// serve accepts connections until ln closes. Beyond cap(slots)
// connections at once, a new one gets an error as its answer.
func (s *apiServer) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(20 * time.Millisecond) // out of descriptors: let some close
			continue
		}
		select {
		case s.slots <- struct{}{}:
			go func() {
				defer func() { <-s.slots }()
				s.serveConn(c)
			}()
		default:
			s.refuse(c)
		}
	}
}

// refuse answers c with "too many connections" once it has sent its
// request (or refuseDeadline passed), so that the client reads the
// answer rather than a broken pipe. Beyond maxRefusing refusals at once,
// c is closed without an answer.
func (s *apiServer) refuse(c net.Conn) {
	s.log.Warn("api: too many connections", "max", cap(s.slots))
	select {
	case s.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-s.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refuseDeadline))
		readRequest(c)
		_, _ = c.Write(apiError(fmt.Sprintf("too many connections (at most %d at once)", cap(s.slots))))
	}()
}

// readRequest reads one request from c: until the client shuts down its
// write side, as soon as what arrived is a whole JSON value, or up to
// maxRequest bytes. ok is false when nothing arrived before an error
// other than EOF (the client gone or too slow).
func readRequest(c net.Conn) (req []byte, ok bool) {
	var buf bytes.Buffer
	chunk := make([]byte, maxRequest)
	for buf.Len() < maxRequest {
		n, err := c.Read(chunk[:maxRequest-buf.Len()])
		buf.Write(chunk[:n])
		if err != nil || json.Valid(bytes.TrimSpace(buf.Bytes())) {
			if err != nil && !errors.Is(err, io.EOF) && buf.Len() == 0 {
				return nil, false
			}
			break
		}
	}
	return buf.Bytes(), true
}

// serveConn reads one request, answers it and closes the connection. A
// client gets ioTimeout to send its request and as long to take the
// answer; a request must be shorter than maxRequest.
func (s *apiServer) serveConn(c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(s.ioTimeout))
	req, ok := readRequest(c)
	if !ok {
		return
	}
	var resp []byte
	if len(req) >= maxRequest {
		s.log.Error("api: too large message", "bytes", len(req))
		resp = apiError("bad request: too large message")
	} else {
		s.log.Info("api request", "req", string(req))
		s.mu.Lock()
		resp = handle(s.fw, req, s.log)
		s.mu.Unlock()
	}
	_ = c.SetWriteDeadline(time.Now().Add(s.ioTimeout))
	_, _ = c.Write(resp)
}
