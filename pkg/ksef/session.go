package ksef

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// publicKey returns the KSeF public key, fetched once per client: ksefPublicKey is rationed like
// every other call, and the key changes rarely.
func (c *Client) publicKey(ctx context.Context) (*rsa.PublicKey, error) {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	if c.pub != nil {
		return c.pub, nil
	}
	r, err := c.PublicKey(ctx)
	if err != nil {
		return nil, err
	}
	pub, err := kcrypto.ParsePublicKey(r.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ksef: the service's public key: %w", err)
	}
	c.pub = pub
	return pub, nil
}

// NewEncryption makes a fresh AES-256 key and IV and wraps the key under the KSeF public key,
// for a session or a query. The caller zeroes the key when done with it.
func (c *Client) NewEncryption(ctx context.Context) (ksefapi.EncryptionInfo, *kcrypto.SessionKey, error) {
	pub, err := c.publicKey(ctx)
	if err != nil {
		return ksefapi.EncryptionInfo{}, nil, err
	}
	key, err := kcrypto.NewSessionKey()
	if err != nil {
		return ksefapi.EncryptionInfo{}, nil, err
	}
	wrapped, err := kcrypto.WrapKey(pub, key.Key)
	if err != nil {
		key.Zero()
		return ksefapi.EncryptionInfo{}, nil, fmt.Errorf("ksef: wrapping the session key: %w", err)
	}
	return ksefapi.EncryptionInfo{EncryptedKey: wrapped, InitVector: base64.StdEncoding.EncodeToString(key.IV)}, key, nil
}

// Session is an open interactive session and its AES key, which lives only in memory.
type Session struct {
	ID      string
	Created time.Time

	client *Client
	mu     sync.Mutex
	key    *kcrypto.SessionKey
}

// OpenSession opens an interactive session for FA(3) invoices with a fresh encryption key.
func (c *Client) OpenSession(ctx context.Context) (*Session, error) {
	info, key, err := c.NewEncryption(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.OpenOnlineSession(ctx, ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: info})
	if err != nil {
		key.Zero()
		return nil, err
	}
	return &Session{ID: r.Id, Created: r.Created, client: c, key: key}, nil
}

// ErrSessionForgotten is returned by Send after Close or Forget.
var ErrSessionForgotten = fmt.Errorf("ksef: session key already discarded")

// SendRequest encrypts and hashes an invoice into the request ksefInvoiceSend takes.
func (s *Session) SendRequest(xml []byte) (ksefapi.KsefInvoiceSendRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return ksefapi.KsefInvoiceSendRequest{}, ErrSessionForgotten
	}
	enc, err := kcrypto.Encrypt(xml, s.key.Key, s.key.IV)
	if err != nil {
		return ksefapi.KsefInvoiceSendRequest{}, fmt.Errorf("ksef: encrypting the invoice: %w", err)
	}
	return ksefapi.KsefInvoiceSendRequest{
		SessionId: s.ID,
		Encrypted: ksefapi.KsefInvoiceEncrypted{
			EncryptedInvoice: enc,
			InvoiceHash:      kcrypto.SHA256Base64(xml),
			InvoiceSize:      int64(len(xml)),
		},
	}, nil
}

// Send encrypts and sends one invoice; the answer's Id is the technical InvoiceId.
func (s *Session) Send(ctx context.Context, xml []byte) (*ksefapi.KsefInvoiceSendResponse, error) {
	req, err := s.SendRequest(xml)
	if err != nil {
		return nil, err
	}
	return s.client.SendInvoice(ctx, req)
}

// Close closes the session in KSeF and discards its key, whatever the answer.
func (s *Session) Close(ctx context.Context) error {
	defer s.Forget()
	ok, err := s.client.CloseSession(ctx, s.ID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("ksef %s: session %s: the service answered result=false", OpSessionClose, s.ID)
	}
	return nil
}

// Forget zeroes the session key without closing the session.
func (s *Session) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		s.key.Zero()
		s.key = nil
	}
}
