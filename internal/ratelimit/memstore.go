package ratelimit

import (
	"context"
	"sync"
)

// MemStore is a Store for a single process (the embedded pipeline, tests).
type MemStore struct {
	mu   sync.Mutex
	data map[string]memEntry
}

type memEntry struct {
	value []byte
	rev   uint64
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{data: map[string]memEntry{}} }

func (m *MemStore) Get(_ context.Context, key string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.data[key]
	return e.value, e.rev, nil
}

func (m *MemStore) Swap(_ context.Context, key string, value []byte, rev uint64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data[key].rev != rev {
		return false, nil
	}
	m.data[key] = memEntry{value: value, rev: rev + 1}
	return true, nil
}
