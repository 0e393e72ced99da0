package fa3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// SchemaFile is one file of the FA(3) schema set: where the Ministry publishes it, where it goes
// in a schema directory, and the SHA-256 it must have.
type SchemaFile struct {
	URL    string
	Path   string // relative to the schema directory, slash-separated
	SHA256 string // hex
}

// PublishedSchemaSet is the FA(3) schema set as the Ministry of Finance publishes it (the
// Central Repository of Templates, crd.gov.pl), each file pinned to its SHA-256: a fetched file
// that differs is refused, so a changed or tampered schema never validates anything.
func PublishedSchemaSet() []SchemaFile {
	const base = "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/"
	return []SchemaFile{
		{URL: "https://crd.gov.pl/wzor/2025/06/25/13775/schemat.xsd", Path: MainSchemaFile,
			SHA256: "b646b6b525f51adf1bb2545f111fc8ca6e7aa6dd2f98948f1667d3695c06d958"},
		{URL: base + "StrukturyDanych_v10-0E.xsd", Path: "bazowe/StrukturyDanych_v10-0E.xsd",
			SHA256: "cb08348374598e1e716e086c40d740390fb9e1bfa3aba1f4ec4cba0e1ef6d60f"},
		{URL: base + "ElementarneTypyDanych_v10-0E.xsd", Path: "bazowe/ElementarneTypyDanych_v10-0E.xsd",
			SHA256: "8daf4d3771de200b26b697294cc906a2add3de9acfbbd97f4b1bd4fc0e5ecb2f"},
		{URL: base + "KodyKrajow_v10-0E.xsd", Path: "bazowe/KodyKrajow_v10-0E.xsd",
			SHA256: "48be2a9f181d7ff80f185c62491ba12604c5cacbbe21af8e2aaaf2c585bbd214"},
	}
}

// maxSchemaFile bounds one downloaded schema file (the largest is under 1 MB).
const maxSchemaFile = 16 << 20

// FetchSchemaSet makes dir a schema directory for NewValidator: files already there with the
// pinned digest are kept, the others are downloaded with client and checked against their pins
// before they are written (atomically). It returns dir.
func FetchSchemaSet(ctx context.Context, client *http.Client, dir string, files []SchemaFile) (string, error) {
	for _, f := range files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if sum, err := fileSHA256(dst); err == nil && sum == f.SHA256 {
			continue
		}
		if err := fetchSchemaFile(ctx, client, dst, f); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func fetchSchemaFile(ctx context.Context, client *http.Client, dst string, f SchemaFile) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return fmt.Errorf("fa3: schema %s: %w", f.URL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fa3: fetching schema %s: %w", f.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fa3: fetching schema %s: HTTP %d", f.URL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSchemaFile+1))
	if err != nil {
		return fmt.Errorf("fa3: fetching schema %s: %w", f.URL, err)
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, f.SHA256) || len(body) > maxSchemaFile {
		return fmt.Errorf("fa3: schema %s has SHA-256 %s, pinned %s: refusing it", f.URL, got, f.SHA256)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
