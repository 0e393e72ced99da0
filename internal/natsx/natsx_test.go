package natsx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded/natsserver"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(natsx.Config) bool
		wantErr string
	}{
		{"defaults", nil, func(c natsx.Config) bool {
			return c.URL == natsx.DefaultURL && c.StreamMaxAge == 30*24*time.Hour &&
				c.DuplicateWindow == 10*time.Minute && c.Replicas == 1 && c.SubjectPrefix == ""
		}, ""},
		{"all set", map[string]string{
			"KSEF_NATS_URL": "nats://a:4222,nats://b:4222", "KSEF_NATS_USER": "u", "KSEF_NATS_PASSWORD": "p",
			"KSEF_NATS_TLS_CA": "ca.pem", "KSEF_NATS_TLS_CERT": "c.pem", "KSEF_NATS_TLS_KEY": "k.pem",
			"KSEF_NATS_TLS_INSECURE": "true", "KSEF_NATS_NAME": "sender", "KSEF_SUBJECT_PREFIX": "acme",
			"KSEF_NATS_STREAM_MAX_AGE": "7d", "KSEF_NATS_DUPLICATE_WINDOW": "2m", "KSEF_NATS_REPLICAS": "3",
			"KSEF_MAX_INLINE_SIZE": "1024",
		}, func(c natsx.Config) bool {
			return c.URL == "nats://a:4222,nats://b:4222" && c.User == "u" && c.Password == "p" &&
				c.TLSCA == "ca.pem" && c.TLSCert == "c.pem" && c.TLSKey == "k.pem" && c.TLSInsecure &&
				c.Name == "sender" && c.SubjectPrefix == "acme" && c.StreamMaxAge == 7*24*time.Hour &&
				c.DuplicateWindow == 2*time.Minute && c.Replicas == 3 && c.MaxInlineSize == 1024
		}, ""},
		{"creds", map[string]string{"KSEF_NATS_CREDS": "x.creds"}, func(c natsx.Config) bool { return c.CredsFile == "x.creds" }, ""},
		{"bad duration", map[string]string{"KSEF_NATS_STREAM_MAX_AGE": "forever"}, nil, "KSEF_NATS_STREAM_MAX_AGE"},
		{"bad days", map[string]string{"KSEF_NATS_STREAM_MAX_AGE": "xd"}, nil, "KSEF_NATS_STREAM_MAX_AGE"},
		{"bad bool", map[string]string{"KSEF_NATS_TLS_INSECURE": "maybe"}, nil, "KSEF_NATS_TLS_INSECURE"},
		{"bad replicas", map[string]string{"KSEF_NATS_REPLICAS": "three"}, nil, "KSEF_NATS_REPLICAS"},
		{"too many replicas", map[string]string{"KSEF_NATS_REPLICAS": "7"}, nil, "replicas"},
		{"two auth methods", map[string]string{"KSEF_NATS_TOKEN": "t", "KSEF_NATS_USER": "u"}, nil, "only one"},
		{"password alone", map[string]string{"KSEF_NATS_PASSWORD": "p"}, nil, "password without user"},
		{"cert without key", map[string]string{"KSEF_NATS_TLS_CERT": "c.pem"}, nil, "together"},
		{"window over age", map[string]string{"KSEF_NATS_STREAM_MAX_AGE": "1m", "KSEF_NATS_DUPLICATE_WINDOW": "2m"}, nil, "duplicate window"},
		{"bad prefix", map[string]string{"KSEF_SUBJECT_PREFIX": "a.*"}, nil, "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := natsx.ConfigFromEnv(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Fatalf("config %s", c)
			}
		})
	}
}

func TestConfigStringRedactsSecrets(t *testing.T) {
	c := natsx.Config{User: "u", Password: "hunter2", Token: "tok-secret"}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "tok-secret") {
			t.Fatalf("secret in %s", s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Fatalf("no redaction marker in %s", s)
		}
	}
}

func TestStreamName(t *testing.T) {
	for prefix, want := range map[string]string{"": "KSEF", "acme": "KSEF_ACME", "acme.prod-1": "KSEF_ACME_PROD_1"} {
		if got := natsx.StreamName(prefix); got != want {
			t.Errorf("StreamName(%q) = %s, want %s", prefix, got, want)
		}
	}
}

// setup starts a server, connects and creates the stream for prefix.
func setup(t *testing.T, prefix string) (natsx.Config, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	_, url := testenv.NATS(t)
	cfg := natsx.Config{URL: url, SubjectPrefix: prefix}.WithDefaults()
	nc, js, err := natsx.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := natsx.EnsureStreams(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg, nc, js
}

func TestEnsureStreams(t *testing.T) {
	cfg, _, js := setup(t, "acme")
	s, err := js.Stream(t.Context(), "KSEF_ACME")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if strings.Join(c.Subjects, " ") != "acme.invoice.> acme.session.> acme.query.> acme.dlq.> acme.batch.>" ||
		c.Retention != jetstream.LimitsPolicy || c.Storage != jetstream.FileStorage ||
		c.MaxAge != 30*24*time.Hour || c.Duplicates != 10*time.Minute {
		t.Fatalf("stream config %+v", c)
	}
	// Idempotent, and updates settings.
	cfg.StreamMaxAge = 48 * time.Hour
	s, err = natsx.EnsureStreams(t.Context(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 48*time.Hour {
		t.Fatalf("MaxAge after update = %v", got)
	}
}

func TestEnsureKV(t *testing.T) {
	_, _, js := setup(t, "")
	kv, err := natsx.EnsureKV(t.Context(), js, "ksef_state", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "5265877635.FV-1", []byte("sent")); err != nil {
		t.Fatal(err)
	}
	kv2, err := natsx.EnsureKV(t.Context(), js, "ksef_state", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv2.Get(t.Context(), "5265877635.FV-1")
	if err != nil || string(e.Value()) != "sent" {
		t.Fatalf("get: %v %v", e, err)
	}
	st, err := kv2.Status(t.Context())
	if err != nil || st.TTL() != time.Hour {
		t.Fatalf("status %v, %v", st, err)
	}
}

func sampleEvent(invoiceID string) *events.InvoiceAccepted {
	return &events.InvoiceAccepted{
		Meta:            events.Meta{CorrelationID: "corr-42", ContextNIP: "5265877635", InvoiceID: invoiceID},
		KsefNumber:      "5265877635-20260314-0100001AF629-AF",
		AcquisitionDate: events.At(time.Now()),
		SessionID:       "20260314-SO-1",
		InvoiceHash:     "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		XML:             &events.ObjectRef{Bucket: "ksef-invoices", Key: "a.xml", Size: 3},
	}
}

func TestPublish(t *testing.T) {
	cfg, _, js := setup(t, "acme")
	p := natsx.NewPublisher(js, cfg)
	ev := sampleEvent("FV/1")
	ack, err := p.PublishAck(t.Context(), ev, nats.Header{"X-Erp": []string{"sap"}})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate || ack.Stream != "KSEF_ACME" {
		t.Fatalf("ack %+v", ack)
	}
	// A retry of the same fact (new occurred_at, same business key) is
	// dropped by the stream.
	again := sampleEvent("FV/1")
	again.OccurredAt = events.At(time.Now().Add(time.Second))
	ack2, err := p.PublishAck(t.Context(), again, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ack2.Duplicate || ack2.Sequence != ack.Sequence {
		t.Fatalf("second publish not deduplicated: %+v", ack2)
	}
	if err := p.Publish(t.Context(), sampleEvent("FV/2"), nil); err != nil {
		t.Fatal(err)
	}

	s, err := js.Stream(t.Context(), "KSEF_ACME")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2", info.State.Msgs)
	}
	raw, err := s.GetMsg(t.Context(), ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "acme.invoice.accepted" ||
		raw.Header.Get("Nats-Msg-Id") != "invoice.accepted:5265877635:FV/1" ||
		raw.Header.Get(natsx.HeaderCorrelationID) != "corr-42" || raw.Header.Get("X-Erp") != "sap" {
		t.Fatalf("message %s %v", raw.Subject, raw.Header)
	}
	got, err := events.Decode(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got.(*events.InvoiceAccepted).KsefNumber != ev.KsefNumber {
		t.Fatalf("decoded %+v", got)
	}
}

func TestPublishInvalidFailsFast(t *testing.T) {
	cfg, _, js := setup(t, "")
	ev := sampleEvent("FV/1")
	ev.ContextNIP = "123"
	start := time.Now()
	err := natsx.NewPublisher(js, cfg).Publish(t.Context(), ev, nil)
	if !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("an invalid event was retried")
	}
}

func TestPublishRetriesUntilStreamExists(t *testing.T) {
	_, url := testenv.NATS(t)
	cfg := natsx.Config{URL: url}.WithDefaults()
	nc, js, err := natsx.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	p := natsx.NewPublisher(js, cfg)

	// No stream: bounded by ctx.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := p.Publish(ctx, sampleEvent("FV/1"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}

	// The stream appears while the publisher retries.
	done := make(chan error, 1)
	go func() { done <- p.Publish(t.Context(), sampleEvent("FV/1"), nil) }()
	time.Sleep(200 * time.Millisecond)
	if _, err := natsx.EnsureStreams(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publish did not succeed after the stream appeared")
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{nats.ErrTimeout, true},
		{fmt.Errorf("x: %w", nats.ErrNoResponders), true},
		{jetstream.ErrNoStreamResponse, true},
		{context.DeadlineExceeded, true},
		{&jetstream.APIError{Code: 503}, true},
		{&jetstream.APIError{Code: 400}, false},
		{nats.ErrConnectionClosed, false},
		{nats.ErrMaxPayload, false},
		{context.Canceled, false},
	}
	for _, tt := range tests {
		if got := natsx.Transient(tt.err); got != tt.want {
			t.Errorf("Transient(%v) = %v", tt.err, got)
		}
	}
}

func TestConnectWaitsForServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := natsx.Config{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := natsx.Connect(ctx, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, _, err := natsx.Connect(t.Context(), cfg)
		done <- result{nc, err}
	}()
	time.Sleep(300 * time.Millisecond)
	s, err := natsserver.Run(natsserver.Options{Dir: t.TempDir(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.nc.Close()
}

func runServer(t *testing.T, opts *server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func TestConnectUserPassword(t *testing.T) {
	url := runServer(t, &server.Options{Username: "ksef", Password: "s3cret"})
	nc, _, err := natsx.Connect(t.Context(), natsx.Config{URL: url, User: "ksef", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()

	// Wrong credentials fail at once instead of retrying until ctx ends.
	start := time.Now()
	_, _, err = natsx.Connect(t.Context(), natsx.Config{URL: url, User: "ksef", Password: "wrong"})
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("password in error: %v", err)
	}
}

func TestConnectTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, serverCert := testCA(t, dir)
	url := runServer(t, &server.Options{
		TLS:       true,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12},
	})
	url = strings.Replace(url, "nats://", "tls://", 1)

	nc, _, err := natsx.Connect(t.Context(), natsx.Config{URL: url, TLSCA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
		t.Fatalf("not TLS: %v", err)
	}
	nc.Close()

	// Without the CA the server is not trusted.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if nc, _, err := natsx.Connect(ctx, natsx.Config{URL: url}); err == nil {
		nc.Close()
		t.Fatal("connected to an untrusted server")
	}
}

// testCA writes a CA certificate to dir and returns its path and a server
// certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T, dir string) (string, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
