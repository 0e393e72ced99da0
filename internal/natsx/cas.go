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
	var err error
	if revision == 0 {
		_, err = c.kv.Create(ctx, key, value)
	} else {
		_, err = c.kv.Update(ctx, key, value, revision)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists), isWrongSequence(err):
		return false, nil
	default:
		return false, fmt.Errorf("natsx: kv swap %s: %w", key, err)
	}
}

// isWrongSequence matches the error of an Update whose expected revision is stale.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
