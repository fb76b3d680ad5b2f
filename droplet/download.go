package droplet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// flight is one download shared by every concurrent Download of the same
// droplet.
type flight struct {
	done    chan struct{} // closed when info and err are set
	info    Info
	err     error
	waiters int                // callers waiting; guarded by Registry.mu
	cancel  context.CancelFunc // stops the transfer
}

// Download makes the droplet sha1 available in the registry, fetching it
// from uri (http or https) unless the registry already has it, and
// returns it.
//
// Concurrent calls for the same droplet share one transfer and all get
// its result: a hundred instances of one app starting at once cost one
// download (they share the first caller's uri). The transfer runs on its
// own: a caller whose ctx ends stops waiting and gets ctx's error, and
// the transfer is cancelled, and its partial file removed, when the last
// waiting caller has gone (Download then returns after the cleanup).
//
// The SHA-1 is computed while the bytes stream into a file in the
// registry's tmp directory, which is renamed into place only when the
// hash matches; a mismatch returns a *HashMismatchError (with the
// expected and actual SHA-1) and stores nothing. A droplet that awaits
// verification is re-hashed first and downloaded again only if it does
// not match.
//
// Transient failures (connection errors, a body cut short, 5xx,
// ErrInactive when no byte arrived for the inactivity timeout) are
// retried with exponential backoff (WithRetry), resuming with a Range
// request where the server supports it; 4xx statuses fail at once
// with a *StatusError, as do ErrLimitExceeded and local I/O errors. After
// the last attempt, the last error is returned.
func (r *Registry) Download(ctx context.Context, sha1, uri string) (Info, error) {
	sha1, err := normalizeSHA1(sha1)
	if err != nil {
		return Info{}, err
	}
	if u, err := url.Parse(uri); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Info{}, fmt.Errorf("%w: download %s: %q is not an http or https URL", ErrInvalid, sha1, redact(uri))
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Info{}, ErrClosed
	}
	if e, err := r.check(sha1); err == nil {
		info := r.info(e)
		r.mu.Unlock()
		return info, nil
	}
	f := r.flights[sha1]
	if f == nil {
		fctx, cancel := context.WithCancel(r.ctx)
		f = &flight{done: make(chan struct{}), cancel: cancel}
		r.flights[sha1] = f
		r.wg.Add(1)
		go r.fly(fctx, f, sha1, uri)
	}
	f.waiters++
	r.mu.Unlock()

	select {
	case <-f.done:
		return copyInfo(f.info), f.err
	case <-ctx.Done():
	}
	r.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last {
		f.cancel()
		if r.flights[sha1] == f {
			delete(r.flights, sha1) // later callers start afresh
		}
	}
	r.mu.Unlock()
	if last {
		<-f.done // the partial file is gone
	}
	return Info{}, fmt.Errorf("droplet: download %s: %w", sha1, ctx.Err())
}

func copyInfo(i Info) Info {
	i.Users = append([]string(nil), i.Users...)
	return i
}

// fly runs a flight's transfer and publishes its result.
func (r *Registry) fly(ctx context.Context, f *flight, sha1, uri string) {
	defer r.wg.Done()
	info, err := r.fetch(ctx, sha1, uri)
	if err != nil && r.ctx.Err() != nil {
		err = fmt.Errorf("%w: download %s interrupted", ErrClosed, sha1)
	}
	r.mu.Lock()
	f.info, f.err = info, err
	if r.flights[sha1] == f {
		delete(r.flights, sha1)
	}
	r.mu.Unlock()
	f.cancel()
	close(f.done)
}

// fetch verifies a droplet awaiting verification, or downloads it.
func (r *Registry) fetch(ctx context.Context, sha1, uri string) (Info, error) {
	r.mu.Lock()
	e, err := r.check(sha1)
	if err == nil {
		info := r.info(e) // stored by Put or LocalCopy meanwhile
		r.mu.Unlock()
		return info, nil
	}
	e = r.droplets[sha1]
	r.mu.Unlock()
	if e != nil {
		info, err := r.Verify(ctx, sha1)
		if err == nil {
			return info, nil
		}
		if ctx.Err() != nil {
			return Info{}, err
		}
		r.log.Warn("stored droplet failed verification; downloading it again", "sha1", sha1, "err", err)
	}
	start := time.Now()
	info, err := r.store(ctx, sha1, redact(uri), func(ctx context.Context, s *staged) error {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval = r.opts.minDelay, r.opts.maxDelay
		b.RandomizationFactor, b.Multiplier = 0.5, 2
		attempt := 0
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			attempt++
			return struct{}{}, r.attempt(ctx, uri, s)
		},
			backoff.WithBackOff(b),
			backoff.WithMaxTries(uint(r.opts.attempts)),
			backoff.WithMaxElapsedTime(0),
			backoff.WithNotify(func(err error, d time.Duration) {
				r.log.Warn("download failed; retrying", "sha1", sha1, "attempt", attempt, "in", d, "err", err)
			}),
		)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("droplet: download %s: %w", sha1, ctx.Err())
		}
		return err
	})
	if err != nil {
		return Info{}, err
	}
	r.log.Info("downloaded", "sha1", sha1, "size", info.Size, "took", time.Since(start))
	return info, nil
}

// attempt makes one request for the droplet, appending to what earlier
// attempts received when the server honours a Range request. Errors that
// must not be retried are wrapped with backoff.Permanent.
func (r *Registry) attempt(ctx context.Context, uri string, s *staged) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	inactive := fmt.Errorf("%w: nothing received from %s for %v", ErrInactive, redact(uri), r.opts.inactivity)
	timer := time.AfterFunc(r.opts.inactivity, func() { cancel(inactive) })
	defer timer.Stop()
	// classify turns an error met during the attempt into its outcome.
	classify := func(err error) error {
		switch cause := context.Cause(ctx); {
		case cause == inactive:
			return inactive
		case cause != nil && !errors.Is(err, ErrLimitExceeded):
			return backoff.Permanent(cause)
		}
		return err
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return backoff.Permanent(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	offset := s.hash.n
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := r.opts.client.Do(req)
	if err != nil {
		return classify(fmt.Errorf("droplet: GET %s: %w", redact(uri), unwrapURLError(err)))
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != offset {
			// Not the part asked for: start over on the next attempt.
			if err := s.reset(); err != nil {
				return backoff.Permanent(err)
			}
			return fmt.Errorf("droplet: GET %s: unexpected Content-Range %q", redact(uri), resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusOK:
		if offset > 0 {
			if err := s.reset(); err != nil {
				return backoff.Permanent(err)
			}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		if err := s.reset(); err != nil {
			return backoff.Permanent(err)
		}
		return statusError(req, resp)
	default:
		serr := statusError(req, resp)
		if !serr.Temporary() {
			return backoff.Permanent(serr)
		}
		return serr
	}
	if max := r.opts.maxSize; max >= 0 && resp.ContentLength >= 0 && s.hash.n+resp.ContentLength > max {
		return backoff.Permanent(fmt.Errorf("%w: droplet at %s is %d bytes, more than %d", ErrLimitExceeded, redact(uri), s.hash.n+resp.ContentLength, max))
	}

	body := &activityReader{r: resp.Body, timer: timer, d: r.opts.inactivity}
	before := s.hash.n
	if err := s.copyFrom(ctx, body, r.opts.maxSize); err != nil {
		var re *readError
		if !errors.As(err, &re) {
			return backoff.Permanent(err) // over the limit, or a local write error
		}
		return classify(fmt.Errorf("droplet: GET %s: %w", redact(uri), re.err))
	}
	if resp.ContentLength >= 0 && s.hash.n-before != resp.ContentLength {
		return fmt.Errorf("droplet: GET %s: %w after %d of %d bytes", redact(uri), io.ErrUnexpectedEOF, s.hash.n-before, resp.ContentLength)
	}
	return nil
}

// readError is an error reading the source of a staged droplet, as
// opposed to writing it.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// activityReader pushes the inactivity deadline back on every read that
// returns data.
type activityReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.timer.Reset(a.d)
	}
	return n, err
}

// rangeStart parses the first byte of "bytes START-END/TOTAL".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

// statusError builds the *StatusError of a response.
func statusError(req *http.Request, resp *http.Response) *StatusError {
	return &StatusError{Method: req.Method, URL: redact(req.URL.String()), StatusCode: resp.StatusCode, Status: resp.Status}
}

// unwrapURLError drops the *url.Error layer, whose message repeats the
// URL with any password in it.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact returns uri without a password (Cloud Controller's download URIs
// carry basic-auth credentials).
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
