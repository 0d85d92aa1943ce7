package actions

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gaoler/gaoler/events"
)

// SignatureHeader carries the webhook body's HMAC-SHA256 under the action's secret, as
// "sha256=<hex>"; the receiver recomputes it over the raw body and compares in constant time.
const SignatureHeader = "X-Gaoler-Signature"

// Webhook POSTs the event's JSON to a URL. A reply that is not 2xx is a failure; network errors, 408,
// 429 and 5xx are retried as its Retry policy says, honouring Retry-After. Every attempt carries the
// same X-Gaoler-Delivery id, so a receiver can drop a duplicate.
type Webhook struct {
	URL    string
	Secret []byte // nil: no signature header
	Host   string
	Client *http.Client
	Retry  Retry
}

// Sign returns the signature header's value for body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Run delivers ev.
func (w *Webhook) Run(ctx context.Context, ev events.Event) (Result, error) {
	body := NewPayload(ev, w.Host).JSON()
	var id [16]byte
	rand.Read(id[:])
	delivery := hex.EncodeToString(id[:])
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	code, _, err := w.Retry.do(ctx, client, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "gaolerd")
		req.Header.Set("X-Gaoler-Event", ev.Kind.String())
		req.Header.Set("X-Gaoler-Delivery", delivery)
		if w.Secret != nil {
			req.Header.Set(SignatureHeader, Sign(w.Secret, body))
		}
		return req, nil
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Note: fmt.Sprintf("HTTP %d from %s", code, redactURL(w.URL))}, nil
}

// Close does nothing: a webhook holds nothing between runs.
func (w *Webhook) Close() {}

// redactURL names a URL by its scheme and host only: chat webhooks carry their token in the path or
// the query, which must not reach the journal.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the URL"
	}
	return u.Scheme + "://" + u.Host
}
