package telemetry

import (
	"context"
	"io"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
)

// countingStore counts the bytes stored through a storage.Store.
type countingStore struct {
	storage.Store
	m *Metrics
}

// Store returns s counting the bytes of every successful Put in ksef_storage_bytes_total.
func (m *Metrics) Store(s storage.Store) storage.Store { return &countingStore{Store: s, m: m} }

func (s *countingStore) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, meta storage.ObjectMeta) (storage.ObjectInfo, error) {
	info, err := s.Store.Put(ctx, bucket, key, r, size, meta)
	if err == nil {
		s.m.StoredBytes(bucket, info.Size)
	}
	return info, err
}
