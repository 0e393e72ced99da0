package natsx

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// CAS is a compare-and-set view of a KV bucket, shared by every replica: the per-invoice state of
// the sender and the request limiter's windows live in one.
type CAS struct{ kv jetstream.KeyValue }

// NewCAS wraps a KV bucket (see EnsureKV).
func NewCAS(kv jetstream.KeyValue) *CAS { return &CAS{kv: kv} }

// Get returns the value and revision of key; a missing (or deleted) key gives nil and 0.
func (c *CAS) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := c.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("natsx: kv get %s: %w", key, err)
	}
	return e.Value(), e.Revision(), nil
}

// Swap writes value if key is still at revision (0: absent) and reports whether it did.
func (c *CAS) Swap(ctx context.Context, key string, value []byte, revision uint64) (bool, error) {
	rev, err := c.SwapRevision(ctx, key, value, revision)
	return rev != 0, err
}

// SwapRevision is Swap that returns the revision the write made (0: another writer got there
// first), so that a writer can write again without reading the key back.
func (c *CAS) SwapRevision(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	var rev uint64
	var err error
	if revision == 0 {
		rev, err = c.kv.Create(ctx, key, value)
	} else {
		rev, err = c.kv.Update(ctx, key, value, revision)
	}
	switch {
	case err == nil:
		return rev, nil
	case errors.Is(err, jetstream.ErrKeyExists), isWrongSequence(err):
		return 0, nil
	default:
		return 0, fmt.Errorf("natsx: kv swap %s: %w", key, err)
	}
}

// isWrongSequence matches the error of an Update whose expected revision is stale.
func isWrongSequence(err error) bool {
	return IsWrongSequence(err)
}

// IsWrongSequence reports whether err is JetStream's "wrong last sequence" answer to a
// compare-and-set write (KV Create, Update or Delete at a revision that is no longer the last):
// code 10071, or 10164, which nats.go documents as the same answer from replicated (R>1) streams
// (nats-server 2.15 still answers 10071 on an R3 bucket).
func IsWrongSequence(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Keys lists the keys that start with prefix (a missing bucket content gives none).
func (c *CAS) Keys(ctx context.Context, prefix string) ([]string, error) {
	lister, err := c.kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, fmt.Errorf("natsx: kv keys %s: %w", prefix, err)
	}
	defer lister.Stop()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// Delete removes key if it is still at revision.
func (c *CAS) Delete(ctx context.Context, key string, revision uint64) error {
	err := c.kv.Delete(ctx, key, jetstream.LastRevision(revision))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !isWrongSequence(err) {
		return fmt.Errorf("natsx: kv delete %s: %w", key, err)
	}
	return nil
}
