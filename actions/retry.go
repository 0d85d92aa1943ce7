package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retry is how an HTTP action tries again: at most Attempts requests, waiting Base, 2*Base, 4*Base...
// (at most Max) with up to half of it added at random, or what a 429 or 503 reply's Retry-After asks
// for. Every wait ends with the run's context: a wait that would outlast it fails at once.
type Retry struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
}

// DefaultRetry is the policy of webhook and abuseipdb actions.
var DefaultRetry = Retry{Attempts: 4, Base: time.Second, Max: 30 * time.Second}

// statusError is a reply that was not 2xx.
type statusError struct {
	code       int
	body       string
	retryAfter time.Duration // from the Retry-After header; 0 when absent
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("HTTP %d %s", e.code, http.StatusText(e.code))
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

// retryable reports whether a failed request may succeed later: a network error, 408, 429 or 5xx.
func retryable(err error) bool {
	var se *statusError
	if !errors.As(err, &se) {
		return true
	}
	return se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout || se.code >= 500
}

// do sends the request newReq builds (once per attempt) until it gets a 2xx reply, a reply that will
// not change (another 4xx), or the attempts or ctx run out. It returns the 2xx status and body.
func (r Retry) do(ctx context.Context, client *http.Client, newReq func(ctx context.Context) (*http.Request, error)) (int, []byte, error) {
	attempts := max(r.Attempts, 1)
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			wait := r.backoff(i)
			var se *statusError
			if errors.As(last, &se) && se.retryAfter > 0 {
				wait = se.retryAfter
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return 0, nil, fmt.Errorf("%w; next try in %s would outlast the timeout", last, wait.Round(time.Millisecond))
			}
			select {
			case <-ctx.Done():
				return 0, nil, fmt.Errorf("%w; %w", last, ctx.Err())
			case <-time.After(wait):
			}
		}
		req, err := newReq(ctx)
		if err != nil {
			return 0, nil, err
		}
		code, body, err := send(client, req)
		if err == nil {
			return code, body, nil
		}
		last = err
		if ctx.Err() != nil {
			return 0, nil, err
		}
		if !retryable(err) {
			return 0, nil, err
		}
	}
	if attempts > 1 {
		return 0, nil, fmt.Errorf("%w (after %d attempts)", last, attempts)
	}
	return 0, nil, last
}

func (r Retry) backoff(attempt int) time.Duration {
	d := r.Base << (attempt - 1)
	if r.Max > 0 && (d > r.Max || d <= 0) {
		d = r.Max
	}
	if d > 0 {
		d += rand.N(d/2 + 1)
	}
	return d
}

// send makes one request; a reply that is not 2xx is a *statusError.
func send(client *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, body, nil
	}
	return 0, nil, &statusError{code: resp.StatusCode, body: oneLine(firstBytes(string(body), 200)), retryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

func firstBytes(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: a number of seconds or an HTTP date (RFC 9110 10.2.3).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > 7*24*3600 {
			n = 7 * 24 * 3600
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
