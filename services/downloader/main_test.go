package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

const (
	seller = "5265877635"
	buyer  = "7010002137"
)

func ptr[T any](v T) *T { return &v }

// TestRunDownloads wires the real service (embedded NATS, local storage, the emulator over
// HTTP) and runs one query through it.
func TestRunDownloads(t *testing.T) {
	em, err := emulator.New(emulator.Config{
		Tokens:       map[string]string{"tok-a": seller, "tok-b": buyer},
		StorageDelay: -1, ProcessingDelay: -1, TempDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em.Handler())
	defer em.Close()
	defer srv.Close()
	_, natsURL := testenv.NATS(t)
	dir := t.TempDir()
	env := map[string]string{
		natsx.EnvURL:               natsURL,
		storage.EnvBackend:         "local",
		storage.EnvDir:             dir,
		"KSEF_API_URL":             srv.URL,
		"KSEF_TOKENS":              buyer + "=tok-b",
		"KSEF_LIMITS":              "test",
		"KSEF_DOWNLOADER_TEMP_DIR": t.TempDir(),
		"KSEF_HTTP_ADDR":           "127.0.0.1:0", // another process may hold the default :9090
	}
	getenv := func(k string) string { return env[k] }

	// Seller A sends three invoices to buyer B.
	start := time.Now().UTC().Add(-time.Minute)
	ctx := t.Context()
	a, err := ksef.New(srv.URL, ksef.WithToken("tok-a"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := a.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		xml, err := fa3wire.Generate(ksefapi.KsefInvoiceGenerateRequest{
			InvoiceNumber: fmt.Sprintf("FV/MAIN/%d", i),
			IssueDate:     openapi_types.Date{Time: time.Now().UTC()},
			Currency:      "PLN",
			Seller:        ksefapi.Party{Nip: ptr(seller), Name: "A", Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. A 1"}},
			Buyer:         ksefapi.Party{Nip: ptr(buyer), Name: "B", Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. B 2"}},
			Lines:         []ksefapi.InvoiceLine{{Name: "Usługa", Quantity: "1", UnitNetPrice: "100", VatRate: ksefapi.N23}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sess.Send(ctx, xml); err != nil {
			t.Fatal(err)
		}
	}
	if err := sess.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := em.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	var logs testenv.LogBuffer
	result := make(chan error, 1)
	go func() { result <- run(runCtx, []string{"downloader"}, getenv, &logs, &logs) }()
	defer func() {
		cancel()
		if err := <-result; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	natsCfg := natsx.Config{URL: natsURL}.WithDefaults()
	nc, js, err := natsx.Connect(ctx, natsCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := natsx.EnsureStreams(ctx, js, natsCfg); err != nil {
		t.Fatal(err)
	}
	req := &events.QueryRequested{Meta: events.Meta{ContextNIP: buyer}, QueryID: "main-1", SubjectType: events.SubjectBuyer, From: events.At(start)}
	if err := natsx.NewPublisher(js, natsCfg).Publish(ctx, req, nil); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, natsx.StreamName(""))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := stream.GetLastMsgForSubject(ctx, natsCfg.Subjects().QueryCompleted())
		if err == nil {
			ev, err := events.Decode(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if done := ev.(*events.QueryCompleted); done.InvoiceCount != 3 || done.QueryID != "main-1" {
				t.Errorf("query.completed = %+v", done)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no query.completed; log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range st.List(ctx, storage.DefaultBuckets().Invoices, buyer+"/downloaded/") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("%d invoices stored, want 3", n)
	}
	if strings.Contains(logs.String(), "tok-b") {
		t.Error("the log shows a token")
	}
}

func TestRunRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"help", nil, []string{"downloader", "-h"}, ""},
		{"bad flag", nil, []string{"downloader", "-nope"}, "flag provided but not defined"},
		{"bad concurrency", map[string]string{"KSEF_DOWNLOADER_CONCURRENCY": "0"}, nil, "concurrency"},
		{"bad poll interval", map[string]string{"KSEF_DOWNLOADER_POLL_INTERVAL": "soon"}, nil, "KSEF_DOWNLOADER_POLL_INTERVAL"},
		{"bad parallelism", map[string]string{"KSEF_DOWNLOADER_PARALLELISM": "-2"}, nil, "parallelism"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args == nil {
				args = []string{"downloader"}
			}
			var out bytes.Buffer
			// Settings errors come before any connection; the timeout only guards the test.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			env := map[string]string{storage.EnvBackend: "local", storage.EnvDir: t.TempDir(), natsx.EnvURL: "nats://127.0.0.1:1"}
			for k, v := range tt.env {
				env[k] = v
			}
			err := run(ctx, args, func(k string) string { return env[k] }, &out, &out)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("run: %v, want an error about %s", err, tt.want)
			}
		})
	}
}
