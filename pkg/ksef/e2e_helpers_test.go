package ksef_test

// End-to-end tests of the typed client against the KSeF emulator served over a real listener.
// This file holds the harness: the emulator, clients, clocks, invoices and polling.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/xml"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// The contexts of the tests: A sells to B; C is a third company.
const (
	nipA = "5261040828"
	nipB = "5213017228"
	nipC = "7740001454"
	tokA = "e2e-token-a"
	tokB = "e2e-token-b"
	tokC = "e2e-token-c"
)

var e2eTokens = map[string]string{tokA: nipA, tokB: nipB, tokC: nipC}

// Delays of the emulator on the real clock: short, so that polling ends quickly, but not zero,
// so that the 100/150 states and the gap before permanent storage are really passed through.
const (
	processingDelay = 20 * time.Millisecond
	storageDelay    = 40 * time.Millisecond
)

var (
	depsOnce sync.Once
	depsKey  *rsa.PrivateKey
	depsVal  *fa3.Validator
	depsErr  error
)

// deps compiles the FA(3) schema and makes a key pair once per test binary: each is slow, and
// every emulator of the tests can share them.
func deps(t testing.TB) (*rsa.PrivateKey, *fa3.Validator) {
	t.Helper()
	dir := testenv.SchemaDir(t)
	depsOnce.Do(func() {
		if depsKey, depsErr = rsa.GenerateKey(rand.Reader, 2048); depsErr != nil {
			return
		}
		depsVal, depsErr = fa3.NewValidator(dir)
	})
	if depsErr != nil {
		t.Fatal(depsErr)
	}
	if !depsVal.SchemaValidated() {
		t.Fatalf("the FA(3) schema in %s was not compiled", dir)
	}
	return depsKey, depsVal
}

// fakeClock is a settable clock shared by the emulator and the client.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

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

// harness is an emulator on 127.0.0.1.
type harness struct {
	em    *emulator.Emulator
	url   string
	clock *fakeClock // nil when the emulator runs on the real clock
}

// startEmulator starts an emulator on the real clock with request limits off and short
// delays; mutate changes the configuration first.
func startEmulator(t testing.TB, mutate func(*emulator.Config)) *harness {
	t.Helper()
	return startEmulatorAt(t, nil, mutate)
}

// startEmulatorAt is startEmulator on a fake clock (nil: the real one). Injected latency
// does not really wait on a fake clock.
func startEmulatorAt(t testing.TB, clock *fakeClock, mutate func(*emulator.Config)) *harness {
	t.Helper()
	key, val := deps(t)
	cfg := emulator.Config{
		Tokens:          e2eTokens,
		SchemaDir:       testenv.SchemaDir(t),
		Validator:       val,
		PrivateKey:      key,
		TempDir:         t.TempDir(),
		ProcessingDelay: processingDelay,
		StorageDelay:    storageDelay,
		Limits:          emulator.LimitConfig{Disabled: true},
		Seed:            1,
	}
	if clock != nil {
		cfg.Now = clock.Now
		cfg.Sleep = func(context.Context, time.Duration) error { return nil }
	}
	if mutate != nil {
		mutate(&cfg)
	}
	em, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(func() {
		srv.Close()
		em.Close()
	})
	return &harness{em: em, url: srv.URL, clock: clock}
}

// client is a typed client acting with token (none when empty).
func (h *harness) client(t testing.TB, token string, opts ...ksef.Option) *ksef.Client {
	t.Helper()
	if token != "" {
		opts = append([]ksef.Option{ksef.WithToken(token)}, opts...)
	}
	c, err := ksef.New(h.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// noRetries makes a client return the first error as it came.
var noRetries = ksef.WithRetryPolicy(ksef.RetryPolicy{MaxAttempts: 1})

// tick lets time pass between two polls: the fake clock moves, the real one is waited for.
func (h *harness) tick() {
	if h.clock != nil {
		h.clock.Advance(processingDelay)
		time.Sleep(time.Millisecond) // the emulator's workers run in real time
		return
	}
	time.Sleep(5 * time.Millisecond)
}

// pollTimeout bounds every wait of the tests; the emulator's delays are milliseconds.
const pollTimeout = 15 * time.Second

// await polls get until done says so.
func await[T any](t *testing.T, h *harness, what string, get func() (T, error), done func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		v, err := get()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %+v after %s", what, v, pollTimeout)
		}
		h.tick()
	}
}

// awaitFinal polls ksefInvoiceStatus until the invoice's status is final.
func awaitFinal(t *testing.T, h *harness, c *ksef.Client, invoiceID string) ksefapi.InvoiceInfo {
	t.Helper()
	return *await(t, h, "invoice "+invoiceID,
		func() (*ksefapi.InvoiceInfo, error) { return c.InvoiceStatus(context.Background(), invoiceID) },
		func(i *ksefapi.InvoiceInfo) bool { return ksef.StatusCode(i.Status.Code).Final() })
}

// awaitStored polls ksefInvoiceStatus until the accepted invoice is permanently stored.
func awaitStored(t *testing.T, h *harness, c *ksef.Client, invoiceID string) ksefapi.InvoiceInfo {
	t.Helper()
	return *await(t, h, "storage of "+invoiceID,
		func() (*ksefapi.InvoiceInfo, error) { return c.InvoiceStatus(context.Background(), invoiceID) },
		func(i *ksefapi.InvoiceInfo) bool { return i.PermanentStorageDate != nil })
}

// awaitSession polls ksefSessionStatus until the session's status code is done.
func awaitSession(t *testing.T, h *harness, c *ksef.Client, sessionID string, done func(code int32) bool) *ksefapi.SessionInfo {
	t.Helper()
	return await(t, h, "session "+sessionID,
		func() (*ksefapi.SessionInfo, error) { return c.SessionStatus(context.Background(), sessionID) },
		func(s *ksefapi.SessionInfo) bool { return done(s.Status.Code) })
}

// invoiceRequest is the structured data of an invoice from seller to buyer.
func invoiceRequest(seller, buyer, number string) ksefapi.KsefInvoiceGenerateRequest {
	str := func(s string) *string { return &s }
	day := openapi_types.Date{Time: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}
	method := 6
	return ksefapi.KsefInvoiceGenerateRequest{
		InvoiceNumber: number,
		IssueDate:     day,
		SaleDate:      &day,
		PlaceOfIssue:  str("Warszawa"),
		Currency:      "PLN",
		Seller: ksefapi.Party{Nip: str(seller), Name: "Sprzedawca " + seller + " Sp. z o.o.",
			Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Żelazna 12", Line2: str("00-851 Warszawa")}},
		Buyer: ksefapi.Party{Nip: str(buyer), Name: "Nabywca " + buyer + " S.A.",
			Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Piotrkowska 100", Line2: str("90-001 Łódź")}},
		Lines: []ksefapi.InvoiceLine{
			{Name: "Wdrożenie integracji KSeF", Unit: str("h"), Quantity: "6", UnitNetPrice: "180.00", VatRate: ksefapi.N23},
			{Name: "Szkolenie zespołu księgowego", Unit: str("szt."), Quantity: "1", UnitNetPrice: "905.50", VatRate: ksefapi.N8},
		},
		Payment: &ksefapi.Payment{Method: &method, BankAccount: str("61109010140000071219812874")},
	}
}

// invoiceXML generates an FA(3) invoice from seller to buyer, checked against the schema.
func invoiceXML(t *testing.T, seller, buyer, number string) []byte {
	t.Helper()
	_, val := deps(t)
	b, err := fa3.Generate(fa3wire.Request(invoiceRequest(seller, buyer, number)), fa3.WithValidator(val))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sample reads one of the Ministry's samples (valid or invalid).
func sample(t *testing.T, kind, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.SharedDir(t), "ksef", "samples", kind, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zipFiles builds a ZIP of the files in the order given.
func zipFiles(t *testing.T, names []string, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unzip reads every file of a ZIP.
func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(zr.File))
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

// upo is what the tests read of a session UPO (v4-3).
type upo struct {
	XMLName    xml.Name `xml:"Potwierdzenie"`
	SessionRef string   `xml:"NumerReferencyjnySesji"`
	ContextNIP string   `xml:"Uwierzytelnienie>IdKontekstu>Nip"`
	Documents  []struct {
		SellerNIP  string `xml:"NipSprzedawcy"`
		KsefNumber string `xml:"NumerKSeFDokumentu"`
		Number     string `xml:"NumerFaktury"`
		Hash       string `xml:"SkrotDokumentu"`
	} `xml:"Dokument"`
}

// readUPO downloads and parses the UPO of a session.
func readUPO(t *testing.T, c *ksef.Client, sessionID string) upo {
	t.Helper()
	body, err := c.SessionUPO(context.Background(), sessionID)
	if err != nil {
		t.Fatalf("UPO of %s: %v", sessionID, err)
	}
	defer body.Close()
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	var u upo
	if err := xml.Unmarshal(raw, &u); err != nil {
		t.Fatalf("UPO: %v\n%s", err, raw)
	}
	if u.XMLName.Space != emulator.UPONamespace {
		t.Errorf("UPO namespace %q, want %q", u.XMLName.Space, emulator.UPONamespace)
	}
	return u
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
