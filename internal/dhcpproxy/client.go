package dhcpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/berthnet/berth/internal/dhcp"
	proxypb "github.com/berthnet/berth/internal/dhcpproxy/proto"
)

// ErrNotRunning is returned when nothing answers on the proxy's socket.
var ErrNotRunning = errors.New("dhcp proxy is not running")

// Error is a failure the proxy reported.
type Error struct {
	Code codes.Code
	Msg  string
}

// Error returns the proxy's message.
func (e *Error) Error() string { return e.Msg }

// Is makes a proxy timeout match dhcp.ErrNoAnswer and an unreachable
// proxy ErrNotRunning.
func (e *Error) Is(target error) bool {
	switch target {
	case dhcp.ErrNoAnswer:
		return e.Code == codes.DeadlineExceeded
	case ErrNotRunning:
		return e.Code == codes.Unavailable
	}
	return false
}

// Client calls a running proxy over its unix socket.
type Client struct {
	cc  *grpc.ClientConn
	api proxypb.NetavarkProxyClient
}

// Dial connects to the proxy's socket. When nothing listens there the
// error wraps ErrNotRunning and names the socket and the reason:
// "dhcp proxy is not running: connect /run/podman/nv-proxy.sock: no such
// file or directory".
func Dial(path string) (*Client, error) {
	// A probe first: gRPC connects lazily and would report a missing
	// proxy only as "Unavailable" on the first call.
	probe, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) {
			err = se.Err
		}
		return nil, fmt.Errorf("%w: connect %s: %w", ErrNotRunning, path, err)
	}
	probe.Close()
	cc, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dhcp proxy client: %w", err)
	}
	return &Client{cc: cc, api: proxypb.NewNetavarkProxyClient(cc)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.cc.Close() }

func callErr(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.Unavailable {
		return fmt.Errorf("%w: %s", ErrNotRunning, st.Message())
	}
	return &Error{Code: st.Code(), Msg: st.Message()}
}

// Setup asks the proxy for a lease (NetavarkProxy.Setup).
func (c *Client) Setup(ctx context.Context, cfg *proxypb.NetworkConfig) (*proxypb.Lease, error) {
	l, err := c.api.Setup(ctx, cfg)
	return l, callErr(err)
}

// Teardown releases a lease (NetavarkProxy.Teardown).
func (c *Client) Teardown(ctx context.Context, cfg *proxypb.NetworkConfig) (*proxypb.Lease, error) {
	l, err := c.api.Teardown(ctx, cfg)
	return l, callErr(err)
}

// Clean releases every lease (NetavarkProxy.Clean).
func (c *Client) Clean(ctx context.Context) error {
	_, err := c.api.Clean(ctx, &proxypb.Empty{})
	return callErr(err)
}
