package downloader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
)

var day = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

// collect is a sink that keeps what it reads.
func collect(dst *bytes.Buffer) sink {
	return func(_ context.Context, r io.Reader) error {
		_, err := io.Copy(dst, r)
		return err
	}
}

func tempEntries(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestFetchPartRoundTrip(t *testing.T) {
	invs := makeInvoices(t, "5265877635", 25, day)
	plain := buildZip(t, invs, zipOptions{})
	key := newKey(t)
	cipher := encrypt(t, plain, key)
	dir := t.TempDir()

	var stored bytes.Buffer
	p, err := fetchPart(t.Context(), bytes.NewReader(cipher), key, dir, collect(&stored))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.Bytes(), cipher) {
		t.Errorf("stored %d bytes, want the %d bytes of ciphertext", stored.Len(), len(cipher))
	}
	if p.rawSize != int64(len(cipher)) || p.rawSHA256 != kcrypto.SHA256Base64(cipher) {
		t.Errorf("raw size/digest = %d %s, want %d %s", p.rawSize, p.rawSHA256, len(cipher), kcrypto.SHA256Base64(cipher))
	}
	if p.size != int64(len(plain)) {
		t.Errorf("decrypted size %d, want %d", p.size, len(plain))
	}
	got, err := readArchive(p.f, p.size, archiveLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(invs) {
		t.Fatalf("%d invoices, want %d", len(got), len(invs))
	}
	for i, a := range got {
		rc, err := a.file.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if a.meta.KsefNumber != invs[i].number || !bytes.Equal(b, invs[i].xml) ||
			!a.meta.PermanentStorageDate.Equal(invs[i].psd) || a.meta.hash() != kcrypto.SHA256Base64(invs[i].xml) {
			t.Errorf("invoice %d = %s %q %s, want %s %q %s", i, a.meta.KsefNumber, b, a.meta.PermanentStorageDate, invs[i].number, invs[i].xml, invs[i].psd)
		}
	}
	if n := tempEntries(t, dir); n != 1 {
		t.Errorf("%d temporary files while the part is open, want 1", n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := tempEntries(t, dir); n != 0 {
		t.Errorf("%d temporary files left after Close", n)
	}
}

func TestFetchPartFailures(t *testing.T) {
	invs := makeInvoices(t, "5265877635", 5, day)
	// Fixed keys: a random wrong key yields valid padding once in 256 runs.
	key := fixedKey(1)
	cipher := encrypt(t, buildZip(t, invs, zipOptions{}), key)
	storeErr := errors.New("bucket on fire")
	netErr := errors.New("connection reset")

	tests := []struct {
		name    string
		body    io.Reader
		key     *kcrypto.SessionKey
		store   func(seen *bytes.Buffer) sink
		want    error  // errors.Is target, when set
		wantMsg string // substring of the error
		// the store must not have seen a clean end of the stream
		storeFailed bool
	}{
		{
			name: "wrong key", body: bytes.NewReader(cipher), key: fixedKey(2),
			store: collect, want: kcrypto.ErrPadding, storeFailed: true,
		},
		{
			name: "not block aligned", body: bytes.NewReader(cipher[:len(cipher)-3]), key: key,
			store: collect, want: kcrypto.ErrCiphertextLength, storeFailed: true,
		},
		{
			name: "connection drops", body: &errReader{r: bytes.NewReader(cipher), n: 100, err: netErr}, key: key,
			store: collect, want: netErr, storeFailed: true,
		},
		{
			name: "store fails midway", body: bytes.NewReader(cipher), key: key,
			store: func(seen *bytes.Buffer) sink {
				return func(_ context.Context, r io.Reader) error {
					io.CopyN(seen, r, 10)
					return storeErr
				}
			},
			want: storeErr,
		},
		{
			name: "store stops early without error", body: bytes.NewReader(cipher), key: key,
			store: func(seen *bytes.Buffer) sink {
				return func(_ context.Context, r io.Reader) error {
					io.CopyN(seen, r, 10)
					return nil
				}
			},
			want: errStoppedEarly,
		},
		{
			name: "empty body", body: strings.NewReader(""), key: key,
			store: collect, want: kcrypto.ErrCiphertextLength, storeFailed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var seen bytes.Buffer
			var storeResult error
			inner := tt.store(&seen)
			p, err := fetchPart(t.Context(), tt.body, tt.key, dir, func(ctx context.Context, r io.Reader) error {
				storeResult = inner(ctx, r)
				return storeResult
			})
			if err == nil {
				p.Close()
				t.Fatal("fetchPart succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if tt.storeFailed && storeResult == nil {
				t.Error("the store saw a clean end of a part that failed")
			}
			if n := tempEntries(t, dir); n != 0 {
				t.Errorf("%d temporary files left behind", n)
			}
		})
	}
}

func TestReadArchive(t *testing.T) {
	invs := makeInvoices(t, "5265877635", 4, day)
	tests := []struct {
		name    string
		zip     []byte
		want    int
		wantErr string
	}{
		{name: "files named by KSeF number", zip: buildZip(t, invs, zipOptions{}), want: 4},
		{name: "files matched by fileName", zip: buildZip(t, invs, zipOptions{byFileName: true}), want: 4},
		{name: "no index", zip: buildZip(t, invs, zipOptions{noIndex: true}), wantErr: "no _metadata.json"},
		{name: "empty package", zip: buildZip(t, nil, zipOptions{}), want: 0},
		{name: "index lists a missing file", zip: buildZip(t, invs, zipOptions{dropXML: 1}), wantErr: "has no XML"},
		{name: "files without index and without KSeF names", zip: buildZip(t, invs, zipOptions{byFileName: true, noIndex: true}), wantErr: "no _metadata.json"},
		{name: "not a zip", zip: []byte("PK\x03\x04 but not really"), wantErr: "not a ZIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readArchive(bytes.NewReader(tt.zip), int64(len(tt.zip)), archiveLimits{maxInvoice: DefaultMaxInvoiceSize})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("%d invoices, want %d", len(got), tt.want)
			}
			for i, a := range got {
				if a.meta.KsefNumber != invs[i].number {
					t.Errorf("invoice %d is %s, want %s", i, a.meta.KsefNumber, invs[i].number)
				}
			}
		})
	}
}
