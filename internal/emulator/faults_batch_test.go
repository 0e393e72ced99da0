package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// ksefClient is the pipeline's client (pkg/ksef) acting with tokA; its retries do not wait.
func (v *env) ksefClient(opts ...ksef.Option) *ksef.Client {
	v.t.Helper()
	noWait := func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	c, err := ksef.New(v.srv.URL, append([]ksef.Option{ksef.WithToken(tokA), ksef.WithClock(time.Now, noWait)}, opts...)...)
	if err != nil {
		v.t.Fatal(err)
	}
	return c
}

// openPackage opens a batch session for the invoices, split into nparts parts, with c.
func (v *env) openPackage(c *ksef.Client, files map[string][]byte, nparts int) (*batchPackage, *ksefapi.KsefSessionOpenBatchResponse) {
	v.t.Helper()
	pkg := v.pack(zipOf(v.t, files), nparts)
	open, err := c.OpenBatchSession(context.Background(), pkg.request())
	if err != nil {
		v.t.Fatal(err)
	}
	return pkg, open
}

// sendPackage opens, uploads and closes a batch session with c and returns its id.
func (v *env) sendPackage(c *ksef.Client, files map[string][]byte) string {
	v.t.Helper()
	ctx := context.Background()
	pkg, open := v.openPackage(c, files, 1)
	for i, u := range open.PartUploadRequests {
		if err := c.UploadBatchPart(ctx, u, bytes.NewReader(pkg.parts[i]), int64(len(pkg.parts[i]))); err != nil {
			v.t.Fatalf("part %d: %v", u.Ordinal, err)
		}
	}
	if ok, err := c.CloseSession(ctx, open.Id); err != nil || !ok {
		v.t.Fatalf("closing: %v %v", ok, err)
	}
	return open.Id
}

// wantSession checks a batch session's status and that it lists exactly n invoices.
func wantSession(t *testing.T, c *ksef.Client, id string, code int32, n int) *ksefapi.SessionInfo {
	t.Helper()
	ctx := context.Background()
	info, err := c.SessionStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status.Code != code || info.Status.Description != sessionStatusText(true, int(code)) || info.InvoiceCount != int32(n) {
		t.Fatalf("session %+v, want %d with %d invoices", info, code, n)
	}
	list, err := c.SessionInvoices(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n {
		t.Fatalf("session lists %d invoices, want %d", len(list), n)
	}
	return info
}

func wantNoUPO(t *testing.T, c *ksef.Client, id string) {
	t.Helper()
	if _, err := c.SessionUPO(context.Background(), id); !ksef.HasCode(err, ksef.CodeSessionNoUPO) {
		t.Errorf("UPO: %v, want code %d", err, ksef.CodeSessionNoUPO)
	}
}

func TestPackageFailsAsAWhole(t *testing.T) {
	for _, code := range []int{405, 415, 420, 430, 435, 500} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			v := newEnv(t, func(c *Config) { c.Faults = Faults{PackageFailRate: 1, PackageFailCodes: []int{code}} })
			c := v.ksefClient()
			id := v.sendPackage(c, invoicesOf(t, 3))
			v.settle()
			info := wantSession(t, c, id, int32(code), 0)
			if info.SessionStatus != ksefapi.Closed || info.SuccessfulInvoiceCount != 0 || info.FailedInvoiceCount != 0 {
				t.Errorf("session %+v", info)
			}
			wantNoUPO(t, c, id)
			st := v.e.Stats()
			if st.Faults["packageFail"] != 1 || len(st.Sends) != 0 || len(st.Outcomes) != 0 {
				t.Errorf("faults %v, sends %v, outcomes %v", st.Faults, st.Sends, st.Outcomes)
			}
		})
	}
}

func TestPackageFailCodesAreDrawn(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{PackageFailRate: 1} })
	c := v.ksefClient()
	seen := map[int32]bool{}
	for i := range 12 {
		id := v.sendPackage(c, invoicesOf(t, 1))
		v.settle()
		info, err := c.SessionStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		seen[info.Status.Code] = true
		if i == 11 && len(seen) < 3 {
			t.Errorf("12 packages failed with only %v", seen)
		}
	}
	for code := range seen {
		switch code {
		case 405, 420, 430, 435: // the default codes
		default:
			t.Errorf("failed with %d", code)
		}
	}
}

func TestBatchFailsRightAfterOpen(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{BatchOpenFailRate: 1} })
	c := v.ksefClient()
	ctx := context.Background()
	pkg, open := v.openPackage(c, invoicesOf(t, 2), 1)
	// Failed before any part arrives.
	if info := wantSession(t, c, open.Id, sessionKeyDecrypt, 0); info.SessionStatus != ksefapi.Closed {
		t.Errorf("session %+v", info)
	}
	// The client can still upload and close as usual; nothing is processed.
	if err := c.UploadBatchPart(ctx, open.PartUploadRequests[0], bytes.NewReader(pkg.parts[0]), int64(len(pkg.parts[0]))); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.CloseSession(ctx, open.Id); err != nil || !ok {
		t.Fatalf("closing: %v %v", ok, err)
	}
	v.settle()
	wantSession(t, c, open.Id, sessionKeyDecrypt, 0)
	wantNoUPO(t, c, open.Id)
	if st := v.e.Stats(); st.Faults["batchOpenFail"] != 1 || len(st.Sends) != 0 {
		t.Errorf("faults %v, sends %v", st.Faults, st.Sends)
	}
}

func TestBatchStuckInProcessing(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{BatchStuckRate: 1, BatchStuckFor: time.Hour} })
	c := v.ksefClient()
	id := v.sendPackage(c, invoicesOf(t, 2))
	v.settle()
	wantSession(t, c, id, sessionProcessing, 0)
	wantNoUPO(t, c, id)
	v.clock.Advance(59 * time.Minute)
	wantSession(t, c, id, sessionProcessing, 0)
	v.clock.Advance(time.Minute + testDelay)
	if info := wantSession(t, c, id, sessionDone, 2); info.SuccessfulInvoiceCount != 2 {
		t.Errorf("session %+v", info)
	}
	if _, err := c.SessionUPO(context.Background(), id); err != nil {
		t.Errorf("UPO after the stuck time: %v", err)
	}
	if n := v.e.Stats().Faults["batchStuck"]; n != 1 {
		t.Errorf("batchStuck faults %d", n)
	}
}

func TestBatchStuckForDefaultsToStuckFor(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{BatchStuckRate: 1, StuckFor: 10 * time.Minute} })
	c := v.ksefClient()
	id := v.sendPackage(c, invoicesOf(t, 1))
	v.settle()
	wantSession(t, c, id, sessionProcessing, 0)
	v.clock.Advance(10*time.Minute + testDelay)
	wantSession(t, c, id, sessionDone, 1)
}

func TestCancelledInvoices(t *testing.T) {
	for _, code := range []ksef.StatusCode{ksef.StatusSessionError, ksef.StatusUnknown, ksef.StatusCancelled} {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d batch=%v", code, batch), func(t *testing.T) {
				v := newEnv(t, func(c *Config) { c.Faults = Faults{CancelRate: 1, CancelCodes: []int{int(code)}} })
				c := v.ksefClient()
				xml := withNumber(t, readSample(t, "valid", sample), "C/1/2026")
				var inv ksefapi.InvoiceInfo
				if batch {
					id := v.sendPackage(c, map[string][]byte{"invoice-001.xml": xml})
					v.settle()
					info := wantSession(t, c, id, sessionNoValid, 1)
					if info.FailedInvoiceCount != 1 {
						t.Errorf("session %+v", info)
					}
					list, _ := c.SessionInvoices(context.Background(), id)
					inv = list[0]
				} else {
					s := v.open(tokA)
					id := s.send(xml)
					v.settle()
					inv = s.status(id)
				}
				st := inv.Status
				if st.Code != int32(code) || st.Description != code.Description() || inv.KsefNumber != nil || !ksef.StatusCode(st.Code).Retryable() {
					t.Fatalf("invoice %+v status %+v", inv, st)
				}
				if code == ksef.StatusCancelled && derefS(st.Details) != cancelledDetails {
					t.Errorf("details %q", derefS(st.Details))
				}
				stats := v.e.Stats()
				if n := v.e.SendCount(nipA, "C/1/2026", kcrypto.SHA256Base64(xml)); n != 0 || stats.Faults["cancel"] != 1 || stats.Outcomes[code] != 1 {
					t.Errorf("send count %d, faults %v, outcomes %v", n, stats.Faults, stats.Outcomes)
				}
			})
		}
	}
}

func TestCancelReplacesOnlyAcceptance(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{CancelRate: 1} })
	xml := readSample(t, "valid", sample)
	cases := []struct {
		name  string
		token string
		xml   []byte
		want  ksef.StatusCode
	}{
		{"schema", tokA, bytes.Replace(xml, []byte("<P_2>"), []byte("<P_2X>"), 1), ksef.StatusInvalid},
		{"seller is not the context", tokX, xml, ksef.StatusPermission},
	}
	for _, tc := range cases {
		s := v.open(tc.token)
		id := s.send(tc.xml)
		v.settle()
		if st := s.status(id); st.Status.Code != int32(tc.want) {
			t.Errorf("%s: ended %d, want %d", tc.name, st.Status.Code, tc.want)
		}
	}
	if n := v.e.Stats().Faults["cancel"]; n != 0 {
		t.Errorf("cancel faults %d", n)
	}
}

// A cancelled invoice is no original for the duplicate check: sent again it can be accepted,
// and only then does a further copy get 440.
func TestCancelledInvoiceResubmitted(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Seed = 3; c.Faults = Faults{CancelRate: 0.5} })
	xml := readSample(t, "valid", sample)
	var codes []int32
	var accepted string
	for range 10 {
		s := v.open(tokA) // each attempt in a session of its own, as a resubmission is
		id := s.send(xml)
		v.settle()
		st := s.status(id)
		codes = append(codes, st.Status.Code)
		if st.Status.Code == 200 {
			accepted = *st.KsefNumber
			break
		}
		if !ksef.StatusCode(st.Status.Code).Retryable() {
			t.Fatalf("attempt %d ended %d %s", len(codes), st.Status.Code, derefS(st.Status.Details))
		}
	}
	if accepted == "" || len(codes) < 2 {
		t.Fatalf("outcomes %v: want cancels, then an acceptance (pick another seed if none was cancelled)", codes)
	}
	hash := kcrypto.SHA256Base64(xml)
	if n := v.e.SendCount(nipA, "llcdpk88gk-2025-06-24", hash); n != 1 {
		t.Errorf("send count %d after %v, want 1", n, codes)
	}
	// Now the accepted one is the original. Sent until not cancelled, a copy is a duplicate of it.
	for range 10 {
		s := v.open(tokA)
		id := s.send(xml)
		v.settle()
		st := s.status(id)
		if ksef.StatusCode(st.Status.Code).Retryable() {
			continue
		}
		if st.Status.Code != 440 || st.Status.Extensions == nil || !strings.Contains(fmt.Sprint(*st.Status.Extensions), accepted) {
			t.Fatalf("copy after the acceptance: %+v", st.Status)
		}
		return
	}
	t.Fatal("every copy was cancelled")
}

func TestPartUploadCallFaults(t *testing.T) {
	cases := []struct {
		name   string
		ops    []ksef.Operation
		stored bool
	}{
		{"upload listed", []ksef.Operation{ksef.OpBatchPartUpload}, false},
		{"upload not listed", []ksef.Operation{ksef.OpInvoiceSend}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, func(c *Config) { c.Faults = Faults{ServerErrorRate: 1, Ops: tc.ops} })
			c := v.ksefClient(ksef.WithRetryPolicy(ksef.RetryPolicy{MaxAttempts: 4}))
			ctx := context.Background()
			pkg, open := v.openPackage(c, invoicesOf(t, 1), 1)
			err := c.UploadBatchPart(ctx, open.PartUploadRequests[0], bytes.NewReader(pkg.parts[0]), int64(len(pkg.parts[0])))
			var ke *ksef.Error
			switch {
			case tc.stored && err != nil:
				t.Fatalf("upload: %v", err)
			case !tc.stored && (!errors.As(err, &ke) || ke.HTTPStatus < 500):
				t.Fatalf("upload: %v, want a 5xx", err)
			}
			if ok, err := c.CloseSession(ctx, open.Id); err != nil || !ok {
				t.Fatalf("closing: %v %v", ok, err)
			}
			v.settle()
			if tc.stored {
				wantSession(t, c, open.Id, sessionDone, 1)
				return
			}
			// Every retry was answered 5xx without storing the part.
			info := wantSession(t, c, open.Id, sessionBadParts, 0)
			if !strings.Contains(derefS(info.Status.Details), "części 1") {
				t.Errorf("details %q", derefS(info.Status.Details))
			}
			if n := v.e.Stats().Faults["5xx"]; n != 4 {
				t.Errorf("5xx faults %d, want one per attempt", n)
			}
		})
	}
}

func TestPartUploadSlow(t *testing.T) {
	var mu sync.Mutex
	var slept []time.Duration
	v := newEnv(t, func(c *Config) {
		c.Faults = Faults{SlowRate: 1, SlowDelay: 7 * time.Second, Ops: []ksef.Operation{ksef.OpBatchPartUpload}}
		c.Sleep = func(_ context.Context, d time.Duration) error {
			mu.Lock()
			slept = append(slept, d)
			mu.Unlock()
			return nil
		}
	})
	c := v.ksefClient()
	v.sendPackage(c, invoicesOf(t, 1))
	mu.Lock()
	defer mu.Unlock()
	// Only the upload was delayed, not the open or the close.
	if len(slept) != 1 || slept[0] != 7*time.Second {
		t.Errorf("slept %v", slept)
	}
}

func TestPartUploadHangs(t *testing.T) {
	const hang = 300 * time.Millisecond
	ctx := context.Background()
	t.Run("answered late", func(t *testing.T) {
		v := newEnv(t, func(c *Config) { c.Faults = Faults{UploadHangRate: 1, UploadHangFor: hang} })
		c := v.ksefClient(ksef.WithRetryPolicy(ksef.RetryPolicy{MaxAttempts: 1}))
		pkg, open := v.openPackage(c, invoicesOf(t, 2), 2)
		up := func(i int) (time.Duration, error) {
			start := time.Now()
			err := c.UploadBatchPart(ctx, open.PartUploadRequests[i], bytes.NewReader(pkg.parts[i]), int64(len(pkg.parts[i])))
			return time.Since(start), err
		}
		// The first hang does not store the part and ends in the proxy's 504.
		took, err := up(1)
		var ke *ksef.Error
		if !errors.As(err, &ke) || ke.HTTPStatus != http.StatusGatewayTimeout || took < hang {
			t.Fatalf("part 2: %v after %s, want a 504 after %s", err, took, hang)
		}
		// The second stores it and answers 201 late.
		if took, err := up(0); err != nil || took < hang {
			t.Fatalf("part 1: %v after %s", err, took)
		}
		if ok, err := c.CloseSession(ctx, open.Id); err != nil || !ok {
			t.Fatalf("closing: %v %v", ok, err)
		}
		v.settle()
		info := wantSession(t, c, open.Id, sessionBadParts, 0)
		if !strings.Contains(derefS(info.Status.Details), "części 2") {
			t.Errorf("details %q: part 2 should be the missing one", derefS(info.Status.Details))
		}
		if n := v.e.Stats().Faults["uploadHang"]; n != 2 {
			t.Errorf("uploadHang faults %d", n)
		}
	})
	t.Run("client times out", func(t *testing.T) {
		// Long enough for the upload to be stored before the client gives up, on a busy machine.
		const long = time.Second
		v := newEnv(t, func(c *Config) { c.Faults = Faults{UploadHangRate: 1, UploadHangFor: long} })
		c := v.ksefClient(ksef.WithRetryPolicy(ksef.RetryPolicy{MaxAttempts: 1}), ksef.WithHTTPClient(&http.Client{Timeout: long / 3}))
		pkg, open := v.openPackage(c, invoicesOf(t, 1), 1)
		body := func() *bytes.Reader { return bytes.NewReader(pkg.parts[0]) }
		size := int64(len(pkg.parts[0]))
		// Both hangs look the same to the client: a timeout. The second stored the part (which
		// hang stores is checked above), so the package is complete.
		for i := range 2 {
			if err := c.UploadBatchPart(ctx, open.PartUploadRequests[0], body(), size); err == nil || !strings.Contains(err.Error(), "Timeout") {
				t.Fatalf("upload %d: %v, want a client timeout", i+1, err)
			}
		}
		if ok, err := c.CloseSession(ctx, open.Id); err != nil || !ok {
			t.Fatalf("closing: %v %v", ok, err)
		}
		v.settle()
		wantSession(t, c, open.Id, sessionDone, 1)
	})
}

// An ambiguous close takes effect; the client's retry of it then fails as KSeF's does (a batch
// session cannot be closed twice), and the package is processed once.
func TestAmbiguousBatchCloseThenRetryFails(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.Faults = Faults{AmbiguousRate: 1, Ops: []ksef.Operation{ksef.OpSessionClose}}
	})
	var mu sync.Mutex
	var statuses []int
	c := v.ksefClient(ksef.WithObserver(func(call ksef.Call) {
		if call.Operation == ksef.OpSessionClose {
			mu.Lock()
			statuses = append(statuses, call.HTTPStatus)
			mu.Unlock()
		}
	}))
	ctx := context.Background()
	files := invoicesOf(t, 2)
	pkg, open := v.openPackage(c, files, 1)
	if err := c.UploadBatchPart(ctx, open.PartUploadRequests[0], bytes.NewReader(pkg.parts[0]), int64(len(pkg.parts[0]))); err != nil {
		t.Fatal(err)
	}
	_, err := c.CloseSession(ctx, open.Id)
	var ke *ksef.Error
	if !errors.As(err, &ke) || ke.HTTPStatus != http.StatusBadRequest || !ksef.HasCode(err, ksef.CodeSessionClose) || !strings.Contains(ke.Details, "uniemożliwia jej zamknięcie") {
		t.Fatalf("close: %v, want 400 %d", err, ksef.CodeSessionClose)
	}
	mu.Lock()
	if len(statuses) != 2 || statuses[0] < 500 || statuses[1] != http.StatusBadRequest {
		t.Errorf("close attempts answered %v, want a 5xx then 400", statuses)
	}
	mu.Unlock()
	v.settle()
	wantSession(t, c, open.Id, sessionDone, 2)
	// Closing again later fails the same way and processes nothing again.
	if _, err := c.CloseSession(ctx, open.Id); !ksef.HasCode(err, ksef.CodeSessionClose) {
		t.Errorf("closing a processed session: %v", err)
	}
	v.settle()
	for name, xml := range files {
		if n := v.e.SendCount(nipA, numberOf(t, xml), kcrypto.SHA256Base64(xml)); n != 1 {
			t.Errorf("%s sent %d times", name, n)
		}
	}
	if n := v.e.Stats().Faults["ambiguous"]; n != 1 {
		t.Errorf("ambiguous faults %d", n)
	}
}

// Ambiguous closes mixed with 5xx on the close only: whenever a close took effect behind a 5xx,
// every retry of it fails (5xx or 400), and no package is processed twice.
func TestAmbiguousBatchCloseWithFailingRetries(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.Seed = 5
		c.Faults = Faults{AmbiguousRate: 0.4, ServerErrorRate: 0.4, Ops: []ksef.Operation{ksef.OpSessionClose}}
	})
	var mu sync.Mutex
	var statuses []int
	c := v.ksefClient(ksef.WithObserver(func(call ksef.Call) {
		if call.Operation == ksef.OpSessionClose {
			mu.Lock()
			statuses = append(statuses, call.HTTPStatus)
			mu.Unlock()
		}
	}))
	ctx := context.Background()
	scenario := 0 // sessions closed behind a 5xx whose retries all failed
	var all [][]byte
	for i := range 8 {
		xml := withNumber(t, readSample(t, "valid", sample), fmt.Sprintf("A/%d/2026", i))
		all = append(all, xml)
		pkg, open := v.openPackage(c, map[string][]byte{"invoice-001.xml": xml}, 1)
		if err := c.UploadBatchPart(ctx, open.PartUploadRequests[0], bytes.NewReader(pkg.parts[0]), int64(len(pkg.parts[0]))); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		statuses = statuses[:0]
		mu.Unlock()
		ok, err := c.CloseSession(ctx, open.Id)
		v.settle()
		info, serr := c.SessionStatus(ctx, open.Id)
		if serr != nil {
			t.Fatal(serr)
		}
		tookEffect := info.Status.Code != sessionOpen
		mu.Lock()
		got := append([]int(nil), statuses...)
		mu.Unlock()
		switch {
		case err == nil && (!ok || !tookEffect || got[len(got)-1] != http.StatusOK):
			t.Errorf("session %d: close answered %v, took effect %v", i, got, tookEffect)
		case err != nil && tookEffect:
			// Took effect behind a 5xx: no later attempt succeeded.
			if got[0] < 500 {
				t.Errorf("session %d: close failed with %v although it took effect", i, got)
			}
			for _, s := range got[1:] {
				if s < 400 {
					t.Errorf("session %d: a retry succeeded: %v", i, got)
				}
			}
			scenario++
		}
		if tookEffect && info.Status.Code != sessionDone {
			t.Errorf("session %d: status %d", i, info.Status.Code)
		}
	}
	if scenario == 0 {
		t.Error("no close took effect behind a 5xx with failing retries (pick another seed)")
	}
	for i, xml := range all {
		if n := v.e.SendCount(nipA, fmt.Sprintf("A/%d/2026", i), kcrypto.SHA256Base64(xml)); n > 1 {
			t.Errorf("invoice %d sent %d times", i, n)
		}
	}
	st := v.e.Stats()
	if st.Faults["ambiguous"] == 0 || st.Faults["5xx"] == 0 {
		t.Errorf("faults %v", st.Faults)
	}
}

func numberOf(t testing.TB, xml []byte) string {
	t.Helper()
	i := bytes.Index(xml, []byte("<P_2>"))
	j := bytes.Index(xml, []byte("</P_2>"))
	if i < 0 || j < i {
		t.Fatal("no P_2")
	}
	return string(xml[i+len("<P_2>") : j])
}

// A stuck batch stays stuck across a restart, and a cancelled invoice stays no original for the
// duplicate check.
func TestFaultOutcomesSurviveRestart(t *testing.T) {
	dataDir := t.TempDir()
	v := newEnv(t, func(c *Config) {
		c.DataDir, c.PrivateKey = dataDir, nil
		c.Faults = Faults{BatchStuckRate: 1, BatchStuckFor: time.Hour, CancelRate: 1, CancelCodes: []int{550}}
	})
	xml := withNumber(t, readSample(t, "valid", sample), "R/1/2026")
	id := v.sendPackage(v.ksefClient(), map[string][]byte{"invoice-001.xml": xml})
	v.settle()
	v.srv.Close()
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := v.e.cfg
	cfg.PrivateKey, cfg.TempDir, cfg.Logger, cfg.Faults = nil, t.TempDir(), nil, Faults{}
	e2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2.Close() })
	srv := httptest.NewServer(e2.Handler())
	t.Cleanup(srv.Close)
	v2 := &env{t: t, e: e2, srv: srv, clock: v.clock}
	c := v2.ksefClient()
	wantSession(t, c, id, sessionProcessing, 0)
	v2.clock.Advance(time.Hour)
	wantSession(t, c, id, sessionNoValid, 1)
	s := v2.open(tokA)
	inv := s.send(xml)
	v2.settle()
	if st := s.status(inv); st.Status.Code != 200 {
		t.Fatalf("resubmitted after a restart: %d %s", st.Status.Code, derefS(st.Status.Details))
	}
}
