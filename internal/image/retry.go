package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// DefaultRetries is how often Podman retries a failed pull or push.
const DefaultRetries = 3

// DefaultRetryDelay is the first pause between attempts; it doubles.
const DefaultRetryDelay = time.Second

// Retryable reports whether err is transient: a refused, reset or
// broken connection, a timeout, or a registry answering 5xx, 408 or
// 429. Authentication, not-found and other 4xx answers, bad references
// and local errors are not.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return retryableStatus(te.StatusCode)
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.EHOSTDOWN, syscall.ENETUNREACH,
		syscall.ENETDOWN, syscall.ENETRESET, syscall.EAGAIN, io.ErrUnexpectedEOF, io.EOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.IsTemporary || de.IsTimeout
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func retryableStatus(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// Backoff is the pause before attempt n (1-based retries): delay,
// 2×delay, 4×delay...
func Backoff(delay time.Duration, n int) time.Duration {
	if n < 1 {
		n = 1
	}
	return delay << (n - 1)
}

// withRetry runs op until it succeeds, fails with an error that is not
// Retryable, or has failed retries+1 times; before each retry it tells
// progress and waits (or returns when ctx ends).
func withRetry(ctx context.Context, retries int, delay time.Duration, progress io.Writer, op func() error) error {
	for n := 0; ; n++ {
		err := op()
		if err == nil || n >= retries || !Retryable(err) {
			return err
		}
		wait := Backoff(delay, n+1)
		fmt.Fprintf(progress, "Failed, retrying in %s ... (%d/%d). Error: %v\n", wait, n+1, retries, err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
