package downloader

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// fakeKSeF answers queries from a fixed list of invoices, in process, so that the downloader's
// decisions (polling, truncation, totals, resumption) can be driven exactly. The integration
// tests run the same flows against the emulator over HTTP.
type fakeKSeF struct {
	t        testing.TB
	mu       sync.Mutex
	invoices []testInvoice // sorted by PermanentStorage date
	cap      int           // truncation cap (0: none)
	perPart  int           // invoices per part
	notReady int           // status answers of 503 before each query is ready
	// startErr and statusErr, when set, are returned by the next call (then cleared).
	startErr, statusErr error
	// sizeSkew is added to every packageSize reported.
	sizeSkew int64
	// corrupt parts are served encrypted with the wrong key, this many times.
	corrupt int
	// build, when set, makes each part's ZIP instead of buildZip (hostile packages).
	build func(invs []testInvoice) []byte
	// pad adds this many bytes to each part after its packageSize was counted.
	pad int

	keys    map[string]*kcrypto.SessionKey
	queries map[string]*fakeQuery
	starts  []ksefapi.KsefInvoiceQueryStartRequest
	results int
}

type fakeQuery struct {
	key    *kcrypto.SessionKey
	parts  [][]byte
	status ksefapi.KsefInvoiceQueryStatusResponse
	polls  int
}

func newFake(t testing.TB, invs []testInvoice, perPart int) *fakeKSeF {
	sorted := slices.Clone(invs)
	slices.SortStableFunc(sorted, func(a, b testInvoice) int { return a.psd.Compare(b.psd) })
	return &fakeKSeF{t: t, invoices: sorted, perPart: perPart, keys: map[string]*kcrypto.SessionKey{}, queries: map[string]*fakeQuery{}}
}

func (f *fakeKSeF) add(invs ...testInvoice) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invoices = append(f.invoices, invs...)
	slices.SortStableFunc(f.invoices, func(a, b testInvoice) int { return a.psd.Compare(b.psd) })
}

func (f *fakeKSeF) NewEncryption(context.Context) (ksefapi.EncryptionInfo, *kcrypto.SessionKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, err := kcrypto.NewSessionKey()
	if err != nil {
		return ksefapi.EncryptionInfo{}, nil, err
	}
	// The caller zeroes its key when done: keep a copy.
	own := &kcrypto.SessionKey{Key: slices.Clone(k.Key), IV: slices.Clone(k.IV)}
	id := fmt.Sprintf("key-%d", len(f.keys))
	f.keys[id] = own
	return ksefapi.EncryptionInfo{EncryptedKey: id, InitVector: base64.StdEncoding.EncodeToString(k.IV)}, k, nil
}

func (f *fakeKSeF) StartQuery(_ context.Context, req ksefapi.KsefInvoiceQueryStartRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.startErr; err != nil {
		f.startErr = nil
		return "", err
	}
	key := f.keys[req.EncryptionInfo.EncryptedKey]
	if key == nil {
		return "", &ksef.Error{Operation: ksef.OpInvoiceQueryStart, HTTPStatus: 400, Code: ksef.CodeQueryParams}
	}
	f.starts = append(f.starts, req)
	var hit []testInvoice
	for _, inv := range f.invoices {
		// Both ends inclusive, so a continuation from lastPermanentStorageDate overlaps.
		if !inv.psd.Before(req.Range.From) && !inv.psd.After(req.Range.To) {
			hit = append(hit, inv)
		}
	}
	q := &fakeQuery{key: key}
	if f.cap > 0 && len(hit) > f.cap {
		hit = hit[:f.cap]
		q.status.IsTruncated = true
	}
	if len(hit) > 0 {
		last := hit[len(hit)-1].psd
		q.status.LastPermanentStorageDate = &last
	}
	q.status.PartNumbers = []string{}
	for i := 0; i < len(hit); i += f.perPart {
		invs := hit[i:min(i+f.perPart, len(hit))]
		plain := buildZip(f.t, invs, zipOptions{})
		if f.build != nil {
			plain = f.build(invs)
		}
		part := encrypt(f.t, plain, key)
		q.status.PackageSize += int64(len(part))
		part = append(part, make([]byte, f.pad)...)
		q.parts = append(q.parts, part)
		q.status.PartNumbers = append(q.status.PartNumbers, fmt.Sprint(len(q.parts)))
	}
	q.status.PackageSize += f.sizeSkew
	q.status.NumberOfInvoices = int32(len(hit))
	id := fmt.Sprintf("Q%03d", len(f.queries)+1)
	f.queries[id] = q
	return id, nil
}

func (f *fakeKSeF) QueryStatus(_ context.Context, id string) (*ksefapi.KsefInvoiceQueryStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.statusErr; err != nil {
		f.statusErr = nil
		return nil, err
	}
	q := f.queries[id]
	if q == nil {
		return nil, &ksef.Error{Operation: ksef.OpInvoiceQueryStatus, HTTPStatus: 404, Code: ksef.CodeQueryStatus}
	}
	q.polls++
	if q.polls <= f.notReady {
		return nil, &ksef.Error{Operation: ksef.OpInvoiceQueryStatus, HTTPStatus: 503, Code: ksef.CodeQueryStatus}
	}
	s := q.status
	return &s, nil
}

func (f *fakeKSeF) QueryResult(_ context.Context, id, part string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queries[id]
	i := slices.Index(q.status.PartNumbers, part)
	if q == nil || i < 0 {
		return nil, &ksef.Error{Operation: ksef.OpInvoiceQueryResult, HTTPStatus: 404, Code: ksef.CodeQueryResult}
	}
	f.results++
	if f.corrupt > 0 {
		f.corrupt--
		// The right ciphertext decrypted and re-encrypted under another key: garbage to us.
		plain, err := kcrypto.Decrypt(q.parts[i], q.key.Key, q.key.IV)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(encrypt(f.t, plain, fixedKey(9)))), nil
	}
	return io.NopCloser(bytes.NewReader(q.parts[i])), nil
}

// recorder is a Publisher that keeps every event, and drops repeated event ids as JetStream's
// duplicate window does.
type recorder struct {
	mu     sync.Mutex
	all    []events.Event
	unique map[string]events.Event
	err    error // returned by every publish when set
}

func (r *recorder) Publish(_ context.Context, ev events.Event, _ nats.Header) error {
	if _, err := events.Encode(ev); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if r.unique == nil {
		r.unique = map[string]events.Event{}
	}
	r.all = append(r.all, ev)
	if _, dup := r.unique[ev.Common().EventID]; !dup {
		r.unique[ev.Common().EventID] = ev
	}
	return nil
}

func (r *recorder) downloaded() map[string]*events.InvoiceDownloaded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*events.InvoiceDownloaded{}
	for _, ev := range r.unique {
		if d, ok := ev.(*events.InvoiceDownloaded); ok {
			out[d.KsefNumber] = d
		}
	}
	return out
}

func (r *recorder) completed() []*events.QueryCompleted {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*events.QueryCompleted
	for _, ev := range r.all {
		if c, ok := ev.(*events.QueryCompleted); ok {
			out = append(out, c)
		}
	}
	return out
}

func (r *recorder) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.all {
		if ev.EventType() == typ {
			n++
		}
	}
	return n
}

func localStore(t testing.TB) storage.Store {
	t.Helper()
	s, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBuckets(t.Context(), storage.DefaultBuckets().All()...); err != nil {
		t.Fatal(err)
	}
	return s
}

func readObject(t testing.TB, s storage.Store, ref *events.ObjectRef) ([]byte, storage.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), ref.Bucket, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

var errBoom = errors.New("boom")
