package emulator

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// Contexts of the tests. nipA is the seller of the sample podstawowa-FA_3_Przyklad_1.xml,
// nipB its buyer and nipC its third party (Podmiot3).
const (
	nipA   = "6891152920"
	nipB   = "3935777054"
	nipC   = "3333333333"
	nipX   = "5265877635"
	tokA   = "token-a"
	tokB   = "token-b"
	tokC   = "token-c"
	tokX   = "token-x"
	sample = "podstawowa-FA_3_Przyklad_1.xml"
)

var testTokens = map[string]string{tokA: nipA, tokB: nipB, tokC: nipC, tokX: nipX}

// sharedDir is ../shared from the repository root (the directory holding go.mod).
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func schemaDir(t testing.TB) string {
	return filepath.Join(sharedDir(t), "ksef", "official", "faktury", "schemy", "FA")
}

func readSample(t testing.TB, kind, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir(t), "ksef", "samples", kind, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	shared     sync.Once
	sharedKey  *rsa.PrivateKey
	sharedVal  *fa3.Validator
	sharedErr  error
	sharedTemp string
)

// sharedDeps compiles the schema and generates a key once per test binary.
func sharedDeps(t testing.TB) (*rsa.PrivateKey, *fa3.Validator) {
	t.Helper()
	shared.Do(func() {
		sharedKey, sharedErr = rsa.GenerateKey(rand.Reader, 2048)
		if sharedErr != nil {
			return
		}
		sharedVal, sharedErr = fa3.NewValidator(schemaDir(t))
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	if !sharedVal.SchemaValidated() {
		t.Fatalf("FA(3) schema not found in %s", schemaDir(t))
	}
	return sharedKey, sharedVal
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	testDelay   = time.Second
	testStorage = 2 * time.Second
)

// env is an emulator served over a real listener on 127.0.0.1.
type env struct {
	t     testing.TB
	e     *Emulator
	srv   *httptest.Server
	clock *fakeClock
}

func newEnv(t testing.TB, mutate func(*Config)) *env {
	t.Helper()
	key, val := sharedDeps(t)
	clock := newClock()
	cfg := Config{
		Tokens:          testTokens,
		Validator:       val,
		PrivateKey:      key,
		TempDir:         t.TempDir(),
		ProcessingDelay: testDelay,
		StorageDelay:    testStorage,
		Limits:          LimitConfig{Disabled: true},
		Seed:            1,
		Now:             clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(func() {
		srv.Close()
		e.Close()
	})
	return &env{t: t, e: e, srv: srv, clock: clock}
}

// client is the generated client acting with a token.
func (v *env) client(token string) *ksefapi.ClientWithResponses {
	v.t.Helper()
	c, err := ksefapi.NewClientWithResponses(v.srv.URL, ksefapi.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		return nil
	}))
	if err != nil {
		v.t.Fatal(err)
	}
	return c
}

// settle waits for processing and moves the clock past the processing and storage delays.
func (v *env) settle() {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.e.WaitIdle(ctx); err != nil {
		v.t.Fatal(err)
	}
	v.clock.Advance(testDelay + testStorage)
}

// encInfo wraps a fresh session key for the emulator.
func (v *env) encInfo() (ksefapi.EncryptionInfo, *kcrypto.SessionKey) {
	v.t.Helper()
	k, err := kcrypto.NewSessionKey()
	if err != nil {
		v.t.Fatal(err)
	}
	wrapped, err := kcrypto.WrapKey(v.e.PublicKey(), k.Key)
	if err != nil {
		v.t.Fatal(err)
	}
	return ksefapi.EncryptionInfo{EncryptedKey: wrapped, InitVector: b64(k.IV)}, k
}

type onlineSession struct {
	id  string
	key *kcrypto.SessionKey
	c   *ksefapi.ClientWithResponses
	v   *env
}

func (v *env) open(token string) *onlineSession {
	v.t.Helper()
	c := v.client(token)
	info, k := v.encInfo()
	resp, err := c.KsefSessionOpenOnlineWithResponse(context.Background(), ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: info})
	if err != nil {
		v.t.Fatal(err)
	}
	if resp.JSON200 == nil {
		v.t.Fatalf("opening a session: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	return &onlineSession{id: resp.JSON200.Id, key: k, c: c, v: v}
}

func (s *onlineSession) request(xml []byte) ksefapi.KsefInvoiceSendRequest {
	s.v.t.Helper()
	ct, err := kcrypto.Encrypt(xml, s.key.Key, s.key.IV)
	if err != nil {
		s.v.t.Fatal(err)
	}
	return ksefapi.KsefInvoiceSendRequest{SessionId: s.id, Encrypted: ksefapi.KsefInvoiceEncrypted{
		EncryptedInvoice: ct, InvoiceHash: kcrypto.SHA256Base64(xml), InvoiceSize: int64(len(xml)),
	}}
}

// send sends xml and returns the invoice id.
func (s *onlineSession) send(xml []byte) string {
	s.v.t.Helper()
	resp, err := s.c.KsefInvoiceSendWithResponse(context.Background(), s.request(xml))
	if err != nil {
		s.v.t.Fatal(err)
	}
	if resp.JSON200 == nil {
		s.v.t.Fatalf("sending: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	return resp.JSON200.Id
}

func (s *onlineSession) status(id string) ksefapi.InvoiceInfo {
	s.v.t.Helper()
	resp, err := s.c.KsefInvoiceStatusWithResponse(context.Background(), id)
	if err != nil {
		s.v.t.Fatal(err)
	}
	if resp.JSON200 == nil || len(resp.JSON200.Invoices) != 1 {
		s.v.t.Fatalf("invoice status: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	return resp.JSON200.Invoices[0]
}

func (s *onlineSession) close() {
	s.v.t.Helper()
	resp, err := s.c.KsefSessionCloseWithResponse(context.Background(), s.id)
	if err != nil {
		s.v.t.Fatal(err)
	}
	if resp.JSON200 == nil || !resp.JSON200.Result {
		s.v.t.Fatalf("closing: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
}

func (s *onlineSession) info() ksefapi.SessionInfo {
	s.v.t.Helper()
	resp, err := s.c.KsefSessionStatusWithResponse(context.Background(), s.id)
	if err != nil {
		s.v.t.Fatal(err)
	}
	if resp.JSON200 == nil {
		s.v.t.Fatalf("session status: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	return resp.JSON200.SessionInfo
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// withNumber gives a copy of the sample another invoice number (P_2), so that it is not a
// duplicate.
func withNumber(t testing.TB, xml []byte, number string) []byte {
	t.Helper()
	inv, err := fa3.Parse(xml)
	if err != nil {
		t.Fatal(err)
	}
	old := "<P_2>" + inv.InvoiceNumber() + "</P_2>"
	if !bytes.Contains(xml, []byte(old)) {
		t.Fatalf("sample has no %s", old)
	}
	return bytes.Replace(xml, []byte(old), []byte("<P_2>"+number+"</P_2>"), 1)
}

// errorOf decodes an Error body and checks the HTTP status and code.
func wantError(t testing.TB, status int, body []byte, gotStatus int, code ksef.Code) ksefapi.Error {
	t.Helper()
	if gotStatus != status {
		t.Fatalf("HTTP %d, want %d: %s", gotStatus, status, body)
	}
	var e ksefapi.Error
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body is not an Error: %v: %q", err, body)
	}
	if e.Code != code.String() {
		t.Fatalf("code %s, want %d: %s", e.Code, code, body)
	}
	if e.Description != code.Description() {
		t.Errorf("description %q, want %q", e.Description, code.Description())
	}
	return e
}

func details(e ksefapi.Error) string {
	if e.Details == nil {
		return ""
	}
	return *e.Details
}

// do sends a raw request.
func (v *env) do(method, path, token, contentType string, body io.Reader) (int, http.Header, []byte) {
	v.t.Helper()
	return v.doT(v.t, method, path, token, contentType, body)
}

// doT is do reporting to t (fuzz targets must not use the F).
func (v *env) doT(t testing.TB, method, path, token, contentType string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, v.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := v.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// unzipAll reads every file of a ZIP.
func unzipAll(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = data
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
