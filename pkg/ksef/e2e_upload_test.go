package ksef_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// TestUploadTargetChecked: a batch part goes only where the client allows — PUT, an allowed
// scheme, the API's host or an allowed one. An answer pointing elsewhere fails the upload with
// ErrUploadTarget before anything (the part, the upload token) is sent, and the error shows no
// query string (which may carry a signature).
func TestUploadTargetChecked(t *testing.T) {
	h := startEmulator(t, nil)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(other.Close)
	otherURL, _ := url.Parse(other.URL)
	api, _ := url.Parse(h.url)

	a := h.client(t, tokA, noRetries)
	_, parts, uploads := openBatch(t, a, []string{"FV/E2E/UP/1"})
	good := uploads[0]
	moved := func(mut func(u *url.URL, info *ksefapi.PartUploadInfo)) ksefapi.PartUploadInfo {
		info := good
		u, _ := url.Parse(good.Url)
		mut(u, &info)
		info.Url = u.String()
		return info
	}
	cases := []struct {
		name    string
		policy  *ksef.UploadPolicy
		info    ksefapi.PartUploadInfo
		refused bool
		reached bool // the other server got the part
	}{
		{"another host", nil, moved(func(u *url.URL, _ *ksefapi.PartUploadInfo) { u.Host = otherURL.Host; u.RawQuery = "sig=SECRET" }), true, false},
		{"API host, another port", nil, moved(func(u *url.URL, _ *ksefapi.PartUploadInfo) { u.Host = api.Hostname() + ":1" }), true, false},
		{"method POST", nil, moved(func(_ *url.URL, i *ksefapi.PartUploadInfo) { i.Method = "POST" }), true, false},
		{"method GET", nil, moved(func(_ *url.URL, i *ksefapi.PartUploadInfo) { i.Method = "GET" }), true, false},
		{"scheme ftp", nil, moved(func(u *url.URL, _ *ksefapi.PartUploadInfo) { u.Scheme = "ftp" }), true, false},
		{"scheme file", nil, moved(func(u *url.URL, _ *ksefapi.PartUploadInfo) { u.Scheme = "file" }), true, false},
		{"user information", nil, moved(func(u *url.URL, _ *ksefapi.PartUploadInfo) { u.User = url.UserPassword("a", "b") }), true, false},
		{"http refused when only https allowed", &ksef.UploadPolicy{Schemes: []string{"https"}}, good, true, false},
		{"another host, allowed by name", &ksef.UploadPolicy{Hosts: []string{otherURL.Hostname()}},
			moved(func(u *url.URL, _ *ksefapi.PartUploadInfo) { u.Host = otherURL.Host }), false, true},
		{"another host, allowed host:port", &ksef.UploadPolicy{Hosts: []string{otherURL.Host}},
			moved(func(u *url.URL, _ *ksefapi.PartUploadInfo) { u.Host = otherURL.Host }), false, true},
		{"the API's own answer", nil, good, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := []ksef.Option{noRetries}
			if c.policy != nil {
				opts = append(opts, ksef.WithUploadPolicy(*c.policy))
			}
			cl := h.client(t, tokA, opts...)
			before := elsewhere.Load()
			err := cl.UploadBatchPart(context.Background(), c.info, bytes.NewReader(parts[0]), int64(len(parts[0])))
			if c.refused != errors.Is(err, ksef.ErrUploadTarget) {
				t.Fatalf("UploadBatchPart: %v, want refused=%v", err, c.refused)
			}
			if !c.refused && err != nil {
				t.Fatalf("UploadBatchPart: %v", err)
			}
			if got := elsewhere.Load() > before; got != c.reached {
				t.Errorf("the other server reached: %v, want %v", got, c.reached)
			}
			if err != nil && (strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), tokA)) {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}
