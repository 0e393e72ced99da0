package ksef

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
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

// SendRequest encrypts and hashes an invoice into the request ksefInvoiceSend takes, for callers
// that send it themselves (Client.SendInvoice). It holds the whole ciphertext; Send streams the
// same JSON instead.
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

// Send encrypts and sends one invoice; the answer's Id is the technical InvoiceId. The request
// body is the JSON SendRequest's request marshals to, encrypted and base64-encoded while the
// transport reads it, so a send holds a few chunks of memory whatever the invoice's size.
// xml must not change until Send returns; the body stops reading it then.
//
// The key: every body (one per attempt, and one more when the transport replays a request it
// could not write) creates its own cipher under the session's lock before it is sent. A Forget
// while a body is being read neither garbles nor stops it; a body wanted after Forget is not
// made and the send fails with ErrSessionForgotten, nothing sent.
func (s *Session) Send(ctx context.Context, xml []byte) (*ksefapi.KsefInvoiceSendResponse, error) {
	frame := newSendFrame(s.ID, xml)
	guard := &sendGuard{}
	defer guard.end()
	// The first body is made before any attempt, so that a forgotten session is a plain
	// ErrSessionForgotten, not a failed attempt.
	first, err := s.sendBody(guard, frame, xml)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.do(ctx, OpInvoiceSend, func(ctx context.Context) (*http.Response, error) {
		body := first
		if body == nil {
			var err error
			if body, err = s.sendBody(guard, frame, xml); err != nil {
				return nil, err
			}
		}
		first = nil
		return s.client.raw.KsefInvoiceSendWithBody(ctx, "application/json", body, func(_ context.Context, req *http.Request) error {
			req.ContentLength = frame.length
			req.GetBody = func() (io.ReadCloser, error) { return s.sendBody(guard, frame, xml) }
			return nil
		})
	})
	return decodeJSON[ksefapi.KsefInvoiceSendResponse](OpInvoiceSend, resp, err)
}

// sendFrame is the JSON of a ksefapi.KsefInvoiceSendRequest around its encryptedInvoice,
// byte for byte what encoding/json makes of it (fields in the struct's order).
type sendFrame struct {
	prefix, suffix []byte
	length         int64 // of the whole body
}

func newSendFrame(sessionID string, xml []byte) sendFrame {
	str := func(v string) string { b, _ := json.Marshal(v); return string(b) } // a string always marshals
	f := sendFrame{
		prefix: []byte(`{"encrypted":{"encryptedInvoice":"`),
		suffix: []byte(`","invoiceHash":` + str(kcrypto.SHA256Base64(xml)) +
			`,"invoiceSize":` + strconv.Itoa(len(xml)) + `},"sessionId":` + str(sessionID) + `}`),
	}
	enc := base64.StdEncoding.EncodedLen(int(kcrypto.EncryptedSize(int64(len(xml)))))
	f.length = int64(len(f.prefix) + enc + len(f.suffix))
	return f
}

// sendGuard ends the bodies of one Send when it returns: the transport may still be writing a
// body after the answer came (a 429 sent before the body was read), and must not read xml then.
type sendGuard struct {
	mu    sync.Mutex
	ended bool
}

func (g *sendGuard) end() {
	g.mu.Lock()
	g.ended = true
	g.mu.Unlock()
}

var (
	errSendEnded  = fmt.Errorf("ksef %s: the send has already returned", OpInvoiceSend)
	errBodyClosed = fmt.Errorf("ksef %s: the request body is closed", OpInvoiceSend)
)

// sendChunk is how much plaintext a body encrypts at a time: kcrypto's own chunk, so that each
// write comes out of the cipher at once.
const sendChunk = 32 << 10

// sendBody streams one request body: plaintext chunk -> AES-CBC -> base64 -> out -> reader.
type sendBody struct {
	guard  *sendGuard
	rest   []byte         // plaintext not yet encrypted
	enc    io.WriteCloser // the cipher, writing into b64
	b64    io.WriteCloser // writing into out
	out    bytes.Buffer   // body bytes ready to be read
	suffix []byte
	err    error // io.EOF once the suffix is in out, or what ended the body
}

// sendBody makes a body with a cipher of its own, under the lock (see Send).
func (s *Session) sendBody(g *sendGuard, f sendFrame, xml []byte) (*sendBody, error) {
	b := &sendBody{guard: g, rest: xml, suffix: f.suffix}
	// One chunk's base64 and the frame: out never grows.
	b.out.Grow(len(f.prefix) + base64.StdEncoding.EncodedLen(sendChunk+16) + len(f.suffix))
	b.out.Write(f.prefix)
	b.b64 = base64.NewEncoder(base64.StdEncoding, &b.out)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		return nil, ErrSessionForgotten
	}
	enc, err := kcrypto.EncryptWriter(b.b64, s.key.Key, s.key.IV)
	if err != nil {
		return nil, fmt.Errorf("ksef: encrypting the invoice: %w", err)
	}
	b.enc = enc
	return b, nil
}

func (b *sendBody) Read(p []byte) (int, error) {
	b.guard.mu.Lock()
	defer b.guard.mu.Unlock()
	if b.guard.ended {
		return 0, errSendEnded
	}
	for b.err == nil && b.out.Len() == 0 {
		b.err = b.fill()
	}
	if b.out.Len() > 0 {
		return b.out.Read(p)
	}
	return 0, b.err
}

// fill encrypts the next chunk into out, or ends the body with the suffix and io.EOF. Writes
// into a bytes.Buffer do not fail: the errors are the cipher's and the encoder's contract.
func (b *sendBody) fill() error {
	if len(b.rest) > 0 {
		n := min(len(b.rest), sendChunk)
		_, err := b.enc.Write(b.rest[:n])
		b.rest = b.rest[n:]
		return err
	}
	if err := b.enc.Close(); err != nil {
		return err
	}
	if err := b.b64.Close(); err != nil {
		return err
	}
	b.out.Write(b.suffix)
	return io.EOF
}

// Close lets go of the plaintext; the transport closes every body it is given.
func (b *sendBody) Close() error {
	b.guard.mu.Lock()
	defer b.guard.mu.Unlock()
	b.rest, b.err = nil, errBodyClosed
	b.out.Reset()
	return nil
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
