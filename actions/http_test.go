package actions

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// script is an HTTP receiver on loopback that answers its requests from a list of replies, and keeps
// every request it got.
type script struct {
	mu      sync.Mutex
	replies []func(w http.ResponseWriter)
	got     []recorded
}

type recorded struct {
	at     time.Time
	header http.Header
	body   []byte
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.got = append(s.got, recorded{time.Now(), r.Header.Clone(), body})
	var reply func(http.ResponseWriter)
	if len(s.replies) > 0 {
		reply, s.replies = s.replies[0], s.replies[1:]
	}
	s.mu.Unlock()
	if reply == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	reply(w)
}

func (s *script) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.got...)
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	}
}

func TestWebhookRetriesAndSigns(t *testing.T) {
	s := &script{replies: []func(http.ResponseWriter){
		status(500), status(429, "Retry-After", "1"), status(200),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	secret := []byte("k3y\n")
	w := &Webhook{URL: srv.URL + "/hook?token=sekrit", Secret: secret, Host: "host.example.org", Retry: Retry{Attempts: 4, Base: 50 * time.Millisecond, Max: time.Second}}
	ev := banEvent("192.0.2.7")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := w.Run(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Note != "HTTP 200 from "+strings.TrimSuffix(srv.URL, "/") {
		t.Fatalf("note %q (the token must not show)", res.Note)
	}
	got := s.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3 (500, 429, 200)", len(got))
	}
	if wait := got[2].at.Sub(got[1].at); wait < 900*time.Millisecond {
		t.Fatalf("retried %v after a 429 with Retry-After: 1", wait)
	}
	want := NewPayload(ev, "host.example.org").JSON()
	ids := map[string]bool{}
	for _, r := range got {
		if string(r.body) != string(want) {
			t.Fatalf("body %s, want %s", r.body, want)
		}
		sig := r.header.Get(SignatureHeader)
		if !hmac.Equal([]byte(sig), []byte(Sign(secret, r.body))) || !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
			t.Fatalf("signature %q does not verify", sig)
		}
		if r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Gaoler-Event") != "ban" {
			t.Fatalf("headers %v", r.header)
		}
		ids[r.header.Get("X-Gaoler-Delivery")] = true
	}
	if len(ids) != 1 {
		t.Fatalf("delivery ids %v, want one for every attempt", ids)
	}
	var p Payload
	if err := json.Unmarshal(got[2].body, &p); err != nil || p.Address != "192.0.2.7" || len(p.Entries) != 2 {
		t.Fatalf("payload %+v, %v", p, err)
	}
}

func TestWebhookFailures(t *testing.T) {
	s := &script{replies: []func(http.ResponseWriter){status(404), status(503), status(503), status(503)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Retry: Retry{Attempts: 3, Base: 10 * time.Millisecond}}
	if _, err := w.Run(context.Background(), banEvent("192.0.2.7")); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("404: err = %v", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Fatalf("a 404 was tried %d times, want once", n)
	}
	if _, err := w.Run(context.Background(), banEvent("192.0.2.7")); err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("503s: err = %v", err)
	}
	if n := len(s.requests()); n != 4 {
		t.Fatalf("%d requests, want 1 + 3", n)
	}
	// A Retry-After longer than the run's time left fails at once.
	s.replies = []func(http.ResponseWriter){status(429, "Retry-After", "3600")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := w.Run(ctx, banEvent("192.0.2.7")); err == nil || !strings.Contains(err.Error(), "would outlast") {
		t.Fatalf("429 for an hour: err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("waited for a Retry-After beyond the timeout")
	}
}

func TestAbuseIPDBReport(t *testing.T) {
	s := &script{replies: []func(http.ResponseWriter){
		status(200), status(429, "Retry-After", "600"),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	a := &AbuseIPDB{
		URL: srv.URL + "/api/v2/report", Key: "secret-key", Categories: []int{18, 22}, Budget: 3,
		Redact: []string{"host.example.org", "host", "198.51.100.1"},
		Retry:  Retry{Attempts: 1}, Now: func() time.Time { return now },
	}
	ev := banEvent("192.0.2.7")
	ev.Entries = []events.Entry{
		{Time: ev.BannedAt, Message: "Failed password for root from 192.0.2.7 port 4242 ssh2 on HOST.example.org (198.51.100.1) host, not localhost nor 198.51.100.10"},
		{Time: ev.BannedAt, Message: "Connection closed by authenticating user root 192.0.2.7 port 4242 [preauth]"},
	}
	res, err := a.Run(context.Background(), ev)
	if err != nil || res.Note != "reported 192.0.2.7 (HTTP 200)" {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	got := s.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	h := got[0].header
	if h.Get("Key") != "secret-key" || h.Get("Accept") != "application/json" || h.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("headers %v", h)
	}
	form, err := url.ParseQuery(string(got[0].body))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"ip":         {"192.0.2.7"},
		"categories": {"18,22"},
		"comment": {"Failed password for root from 192.0.2.7 port 4242 ssh2 on [this host] ([this host]) [this host], not localhost nor 198.51.100.10\n" +
			"Connection closed by authenticating user root 192.0.2.7 port 4242 [preauth]"},
		"timestamp": {"2026-12-03T10:00:00Z"},
	}
	if form.Encode() != want.Encode() {
		t.Fatalf("form\n%v\nwant\n%v", form, want)
	}
	// The same address within 15 minutes is not reported again.
	now = now.Add(14 * time.Minute)
	if res, err := a.Run(context.Background(), ev); err != nil || !strings.Contains(res.Skipped, "reported 14m0s ago") {
		t.Fatalf("second report within 15m: %+v, %v", res, err)
	}
	// After 15 minutes it is; the server answers 429, and nothing is asked until Retry-After passed.
	now = now.Add(time.Minute)
	if _, err := a.Run(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "HTTP 429") {
		t.Fatalf("429: err = %v", err)
	}
	if res, _ := a.Run(context.Background(), banEvent("192.0.2.8")); !strings.Contains(res.Skipped, "asked to wait until 2026-12-03T10:25:00Z") {
		t.Fatalf("after a 429: %+v", res)
	}
	if n := len(s.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	// The budget: 3 a day; two are spent (the 429 counted).
	now = now.Add(11 * time.Minute)
	if res, err := a.Run(context.Background(), banEvent("192.0.2.8")); err != nil || res.Skipped != "" {
		t.Fatalf("third report: %+v, %v", res, err)
	}
	if res, _ := a.Run(context.Background(), banEvent("192.0.2.9")); res.Skipped != "the daily budget of 3 reports is spent" {
		t.Fatalf("fourth report: %+v", res)
	}
	now = now.Add(24 * time.Hour)
	if res, err := a.Run(context.Background(), banEvent("192.0.2.9")); err != nil || res.Skipped != "" {
		t.Fatalf("a day later: %+v, %v", res, err)
	}
	if n := len(s.requests()); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
	unban := ev
	unban.Kind = events.Unban
	if res, _ := a.Run(context.Background(), unban); res.Skipped == "" {
		t.Fatal("an unban was reported")
	}
}
