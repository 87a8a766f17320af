package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// ErrNetwork is matched (errors.Is) by every *NetworkError: a request that
// got no answer from Latch.
var ErrNetwork = errors.New("latch: network error")

// NetworkError is a request that got no (whole) answer from Latch: the
// connection could not be made or broke, or a timeout passed (WithTimeout,
// WithRefreshTimeout, the transport's own, or the deadline of the caller's
// context). It matches ErrNetwork, and wraps the underlying error, so that
// errors.Is(err, context.DeadlineExceeded) still holds for a deadline. A
// call that the caller cancelled fails with context.Canceled instead.
type NetworkError struct {
	// Method and URL are those of the request.
	Method, URL string
	// Err is the failure: a *net.OpError, io.ErrUnexpectedEOF,
	// context.DeadlineExceeded and the like.
	Err error
}

// Error says how the request failed. (The *url.Error that net/http wraps
// around it names the request.)
func (e *NetworkError) Error() string { return "latch: network error: " + e.Err.Error() }

// Is matches ErrNetwork.
func (e *NetworkError) Is(target error) bool { return target == ErrNetwork }

// Unwrap returns the underlying failure.
func (e *NetworkError) Unwrap() error { return e.Err }

// Timeout reports whether a timeout or deadline ended the request.
func (e *NetworkError) Timeout() bool {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// networkError wraps err, a failure of req below the Client's own layers,
// in a *NetworkError; a cancellation by the caller stays as it is.
func networkError(req *http.Request, err error) error {
	if err == nil || errors.Is(err, ErrNetwork) {
		return err
	}
	if ctx := req.Context(); errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	u := *req.URL
	u.RawQuery, u.User = "", nil
	return &NetworkError{Method: req.Method, URL: u.String(), Err: err}
}

// netTransport turns the failures of the transport it wraps, while sending
// a request and while reading its response, into *NetworkError.
type netTransport struct{ next http.RoundTripper }

var _ http.RoundTripper = netTransport{}

func (t netTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, networkError(req, err)
	}
	res.Body = &netBody{ReadCloser: res.Body, req: req}
	return res, nil
}

// netBody is a response body whose read errors are *NetworkError.
type netBody struct {
	io.ReadCloser
	req *http.Request
}

func (b *netBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = networkError(b.req, err)
	}
	return n, err
}

// timeoutTransport bounds each request, its retries and a refresh it
// waits for included, until its response body is closed or read to the
// end: what http.Client.Timeout does, but with the failure a *NetworkError.
type timeoutTransport struct {
	d    time.Duration
	next http.RoundTripper
}

var _ http.RoundTripper = timeoutTransport{}

func (t timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.d)
	r := req.WithContext(ctx)
	res, err := t.next.RoundTrip(r)
	if err != nil {
		cancel()
		// A retry's wait or a refresh can end on the deadline without a
		// request below to report it.
		if errors.Is(err, context.DeadlineExceeded) {
			err = networkError(r, err)
		}
		return nil, err
	}
	res.Body = &cancelBody{ReadCloser: res.Body, cancel: cancel}
	return res, nil
}

// cancelBody ends a request's timeout when its body is done with.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel()
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
