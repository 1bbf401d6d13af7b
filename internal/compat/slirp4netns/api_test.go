package slirp4netns

import (
	"errors"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/berthnet/berth/internal/usernet"
)

// apiErrorCases are requests and slirp4netns 1.2's exact answers (taken
// from the real slirp4netns 1.2.0).
var apiErrorCases = map[string]string{
	`{"execute":"add_hostfwd","arguments":{"proto":"sctp","host_port":18081,"guest_port":81}}`:                    `{"error":{"desc":"bad request: add_hostfwd: bad arguments.proto"}}`,
	`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"x","host_port":18082,"guest_port":81}}`:     `{"error":{"desc":"bad request: add_hostfwd: bad arguments.host_addr"}}`,
	`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":18083}}`:                                     `{"error":{"desc":"bad request: add_hostfwd: bad arguments.guest_port"}}`,
	`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":0,"guest_port":81}}`: `{"error":{"desc":"bad request: add_hostfwd: bad arguments.host_port"}}`,
	`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":18090,"guest_addr":"x","guest_port":81}}`:    `{"error":{"desc":"bad request: add_hostfwd: bad arguments.guest_addr"}}`,
	`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":"18091","guest_port":81}}`:                   `{"error":{"desc":"bad request: add_hostfwd: bad arguments.host_port"}}`,
	`{"execute":"remove_hostfwd","arguments":{"id":999}}`:                                                         `{"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}}`,
	`{"execute":"remove_hostfwd"}`: `{"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}}`,
	`{"execute":"bogus"}`:          `{"error":{"desc":"bad request: unknown execute"}}`,
	`{"foo":1}`:                    `{"error":{"desc":"bad request: no execute found"}}`,
	`{"execute":1}`:                `{"error":{"desc":"bad request: no execute found"}}`,
	`notjson`:                      `{"error":{"desc":"bad request: cannot parse JSON"}}`,
	`[1]`:                          `{"error":{"desc":"bad request: json_object() failed"}}`,
}

type fakeForwarder struct {
	fwds   []usernet.Forward
	next   int
	failOn uint16
}

func (f *fakeForwarder) AddForward(fw usernet.Forward) (usernet.Forward, error) {
	if fw.HostPort == f.failOn {
		return fw, errors.New("address in use")
	}
	if !fw.HostAddr.IsValid() {
		fw.HostAddr = netip.IPv4Unspecified()
	}
	if !fw.GuestAddr.IsValid() {
		fw.GuestAddr = netip.MustParseAddr("10.0.2.100")
	}
	f.next++
	fw.ID = f.next
	f.fwds = append(f.fwds, fw)
	return fw, nil
}

func (f *fakeForwarder) RemoveForward(id int) error {
	for i, fw := range f.fwds {
		if fw.ID == id {
			f.fwds = append(f.fwds[:i], f.fwds[i+1:]...)
			return nil
		}
	}
	return usernet.ErrForwardNotFound
}

func (f *fakeForwarder) Forwards() []usernet.Forward { return f.fwds }

func TestAPI(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	fw := &fakeForwarder{failOn: 1}
	steps := []struct{ req, want string }{
		{`{"execute":"list_hostfwd"}`, `{"entries":[]}`},
		{`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80}}`, `{"return":{"id":1}}`},
		// Podman sends an empty guest_addr.
		{`{"execute":"add_hostfwd","arguments":{"proto":"udp","host_addr":"","host_port":5353,"guest_addr":"","guest_port":53}}`, `{"return":{"id":2}}`},
		{`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":1,"guest_port":80}}`, `{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}}`},
		{`{"execute":"list_hostfwd"}`, `{"entries":[{"id":1,"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80},{"id":2,"proto":"udp","host_addr":"0.0.0.0","host_port":5353,"guest_addr":"10.0.2.100","guest_port":53}]}`},
		{`{"execute":"remove_hostfwd","arguments":{"id":1}}`, `{"return":{}}`},
		{`{"execute":"remove_hostfwd","arguments":{"id":1}}`, `{"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}}`},
		{`{"execute":"list_hostfwd"}`, `{"entries":[{"id":2,"proto":"udp","host_addr":"0.0.0.0","host_port":5353,"guest_addr":"10.0.2.100","guest_port":53}]}`},
	}
	for _, s := range steps {
		if got := string(handle(fw, []byte(s.req), log)); got != s.want {
			t.Errorf("%s:\n got %s\nwant %s", s.req, got, s.want)
		}
	}
	for req, want := range apiErrorCases {
		if got := string(handle(fw, []byte(req), log)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", req, got, want)
		}
	}
}
