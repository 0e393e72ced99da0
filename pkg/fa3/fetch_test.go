package fa3_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// ministry serves the schema files as the Ministry's server would, from the shared copy; the
// published URLs are out of reach here, so the set's URLs are pointed at it (same paths).
func ministry(t *testing.T, tamper string) (files []fa3.SchemaFile, hits *atomic.Int32) {
	t.Helper()
	src := testenv.SchemaDir(t)
	byPath := map[string]string{}
	for _, f := range fa3.PublishedSchemaSet() {
		u, _ := url.Parse(f.URL)
		byPath[u.Path] = filepath.Join(src, filepath.FromSlash(f.Path))
	}
	hits = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		local, ok := byPath[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		data, err := os.ReadFile(local)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if tamper != "" && strings.HasSuffix(r.URL.Path, tamper) {
			data = append(data, []byte("<!-- changed -->")...)
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	for _, f := range fa3.PublishedSchemaSet() {
		u, _ := url.Parse(f.URL)
		f.URL = srv.URL + u.Path
		files = append(files, f)
	}
	return files, hits
}

func TestFetchSchemaSetValidatesLikeTheMinistrysCopy(t *testing.T) {
	files, hits := ministry(t, "")
	dir := t.TempDir()
	got, err := fa3.FetchSchemaSet(context.Background(), http.DefaultClient, dir, files)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fa3.NewValidator(got)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if !v.SchemaValidated() {
		t.Fatal("the fetched set does not load as an XSD schema")
	}
	sample, err := os.ReadFile(filepath.Join(testenv.SharedDir(t), "ksef", "samples", "valid", "podstawowa-FA_3_Przyklad_1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(context.Background(), sample); err != nil {
		t.Fatalf("a valid sample fails against the fetched set: %v", err)
	}
	// A second fetch finds every file in place and downloads nothing.
	before := hits.Load()
	if _, err := fa3.FetchSchemaSet(context.Background(), http.DefaultClient, dir, files); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != before {
		t.Fatalf("%d downloads for a complete cache", hits.Load()-before)
	}
}

func TestFetchSchemaSetRefusesAChangedFile(t *testing.T) {
	files, _ := ministry(t, "KodyKrajow_v10-0E.xsd")
	dir := t.TempDir()
	_, err := fa3.FetchSchemaSet(context.Background(), http.DefaultClient, dir, files)
	if err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("a file that differs from its pin was accepted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bazowe", "KodyKrajow_v10-0E.xsd")); !os.IsNotExist(err) {
		t.Fatalf("the refused file was written: %v", err)
	}
}
