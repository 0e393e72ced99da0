package downloader

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// streamKSeF answers one query with a single part generated on the fly (n invoices of size
// bytes, zipped and encrypted as they are read), so that the benchmark itself holds no part in
// memory.
type streamKSeF struct {
	n, size int
	key     *kcrypto.SessionKey
	pkgSize int64
}

func (s *streamKSeF) NewEncryption(context.Context) (ksefapi.EncryptionInfo, *kcrypto.SessionKey, error) {
	k, err := kcrypto.NewSessionKey()
	if err != nil {
		return ksefapi.EncryptionInfo{}, nil, err
	}
	s.key = &kcrypto.SessionKey{Key: slices.Clone(k.Key), IV: slices.Clone(k.IV)}
	return ksefapi.EncryptionInfo{EncryptedKey: "k", InitVector: "iv"}, k, nil
}

func (s *streamKSeF) StartQuery(context.Context, ksefapi.KsefInvoiceQueryStartRequest) (string, error) {
	return "S1", nil
}

func (s *streamKSeF) QueryStatus(context.Context, string) (*ksefapi.KsefInvoiceQueryStatusResponse, error) {
	if s.pkgSize == 0 {
		var c countWriter
		if err := s.writeZip(&c); err != nil {
			return nil, err
		}
		s.pkgSize = kcrypto.EncryptedSize(int64(c))
	}
	return &ksefapi.KsefInvoiceQueryStatusResponse{NumberOfInvoices: int32(s.n), PackageSize: s.pkgSize, PartNumbers: []string{"1"}}, nil
}

func (s *streamKSeF) QueryResult(context.Context, string, string) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		enc, err := kcrypto.EncryptWriter(pw, s.key.Key, s.key.IV)
		if err == nil {
			err = s.writeZip(enc)
		}
		if err == nil {
			err = enc.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// writeZip writes the package: stored (not deflated) so that the benchmark measures the
// download path, not the generator's compression.
func (s *streamKSeF) writeZip(w io.Writer) error {
	zw := zip.NewWriter(w)
	body := bytes.Repeat([]byte("<P_7>Usługa</P_7>"), s.size/18+1)[:s.size]
	type entry struct {
		KsefNumber           string    `json:"ksefNumber"`
		PermanentStorageDate time.Time `json:"permanentStorageDate"`
		InvoiceHash          string    `json:"invoiceHash"`
	}
	index := struct {
		Invoices []entry `json:"invoices"`
	}{Invoices: make([]entry, 0, s.n)}
	for i := range s.n {
		num := ksef.NewNumber(sellerNIP, day, uint64(i))
		copy(body, num) // each invoice differs
		f, err := zw.CreateHeader(&zip.FileHeader{Name: num + ".xml", Method: zip.Store})
		if err != nil {
			return err
		}
		if _, err := f.Write(body); err != nil {
			return err
		}
		index.Invoices = append(index.Invoices, entry{num, day.Add(time.Duration(i) * time.Millisecond), kcrypto.SHA256Base64(body)})
	}
	f, err := zw.Create(MetadataName)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(index); err != nil {
		return err
	}
	return zw.Close()
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// counting is a Publisher that only counts, so the benchmark's heap is the downloader's.
type counting struct{ n atomic.Int64 }

func (c *counting) Publish(_ context.Context, ev events.Event, _ nats.Header) error {
	if _, err := events.Encode(ev); err != nil {
		return err
	}
	c.n.Add(1)
	return nil
}

// BenchmarkLargePart downloads one query of a single part of growing size and reports the peak
// heap growth (peak-heap-MiB), which must stay flat: the part streams to storage and to a
// temporary file, never into memory.
func BenchmarkLargePart(b *testing.B) {
	const invoiceSize = 64 << 10
	stores := []struct {
		name string
		open func(b *testing.B) storage.Store
	}{
		{"local", func(b *testing.B) storage.Store { return localStore(b) }},
		{"minio", func(b *testing.B) storage.Store {
			endpoint, ak, sk := testenv.MinIO(b)
			st, err := storage.NewS3(storage.S3Config{Endpoint: endpoint, AccessKey: ak, SecretKey: sk})
			if err != nil {
				b.Fatal(err)
			}
			if err := st.EnsureBuckets(b.Context(), storage.DefaultBuckets().Invoices, storage.DefaultBuckets().QueryParts); err != nil {
				b.Fatal(err)
			}
			return st
		}},
	}
	for _, sto := range stores {
		for _, mib := range []int{16, 64, 256} {
			b.Run(fmt.Sprintf("store=%s/part=%dMiB", sto.name, mib), func(b *testing.B) {
				fake := &streamKSeF{n: mib << 20 / invoiceSize, size: invoiceSize}
				pub := &counting{}
				// Parts larger than KSeF makes, to show memory stays flat.
				d, err := New(Config{TempDir: b.TempDir(), MaxPartSize: 1 << 30}, Deps{
					Clients:   func(context.Context, string) (KSeF, error) { return fake, nil },
					Store:     sto.open(b),
					Publisher: pub,
				})
				if err != nil {
					b.Fatal(err)
				}
				var peak uint64
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					stop := heapPeak()
					done, err := d.Download(b.Context(), request(fmt.Sprintf("bench-%d", i), events.SubjectBuyer, day, day.Add(time.Hour), false), nil)
					peak = max(peak, stop())
					if err != nil {
						b.Fatal(err)
					}
					if done.InvoiceCount != fake.n {
						b.Fatalf("%d invoices, want %d", done.InvoiceCount, fake.n)
					}
				}
				b.SetBytes(fake.pkgSize)
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			})
		}
	}
}
