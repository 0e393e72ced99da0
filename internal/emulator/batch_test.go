package emulator

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// batchPackage is a ZIP split into encrypted parts, as a client prepares it.
type batchPackage struct {
	zip   []byte
	parts [][]byte // encrypted
	key   *kcrypto.SessionKey
	info  ksefapi.EncryptionInfo
}

func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range len(files) {
		name := fmt.Sprintf("invoice-%03d.xml", i+1)
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (v *env) pack(zipBytes []byte, nparts int) *batchPackage {
	v.t.Helper()
	info, k := v.encInfo()
	p := &batchPackage{zip: zipBytes, key: k, info: info}
	size := (len(zipBytes) + nparts - 1) / nparts
	for i := 0; i < len(zipBytes); i += size {
		ct, err := kcrypto.Encrypt(zipBytes[i:min(i+size, len(zipBytes))], k.Key, k.IV)
		if err != nil {
			v.t.Fatal(err)
		}
		p.parts = append(p.parts, ct)
	}
	return p
}

func (p *batchPackage) request() ksefapi.KsefSessionOpenBatchRequest {
	bi := ksefapi.BatchInfo{BatchSize: int64(len(p.zip)), BatchHash: kcrypto.SHA256Base64(p.zip)}
	for i, part := range p.parts {
		bi.BatchParts = append(bi.BatchParts, ksefapi.BatchPartInfo{Ordinal: int32(i + 1), PartSize: int64(len(part)), PartHash: kcrypto.SHA256Base64(part)})
	}
	return ksefapi.KsefSessionOpenBatchRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: p.info, BatchInfo: bi}
}

func (v *env) openBatch(token string, req ksefapi.KsefSessionOpenBatchRequest) *ksefapi.KsefSessionOpenBatchResponse {
	v.t.Helper()
	resp, err := v.client(token).KsefSessionOpenBatchWithResponse(context.Background(), req)
	if err != nil {
		v.t.Fatal(err)
	}
	if resp.JSON200 == nil {
		v.t.Fatalf("open batch: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	return resp.JSON200
}

// upload PUTs a part as the emulator said, returning the HTTP status.
func upload(t testing.TB, info ksefapi.PartUploadInfo, body []byte, edit func(*http.Request)) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(info.Method, info.Url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range info.Headers {
		req.Header.Set(h.Name, h.Value)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func invoicesOf(t testing.TB, n int) map[string][]byte {
	base := readSample(t, "valid", sample)
	files := make(map[string][]byte)
	for i := range n {
		files[fmt.Sprintf("invoice-%03d.xml", i+1)] = withNumber(t, base, fmt.Sprintf("B/%d/2026", i+1))
	}
	return files
}

func TestBatchSessionTwoParts(t *testing.T) {
	v := newEnv(t, nil)
	files := invoicesOf(t, 3)
	files["invoice-003.xml"] = bytes.Replace(files["invoice-003.xml"], []byte("<P_2>"), []byte("<P_2X>"), 1) // fails the schema
	pkg := v.pack(zipOf(t, files), 2)
	if len(pkg.parts) != 2 {
		t.Fatalf("%d parts", len(pkg.parts))
	}
	open := v.openBatch(tokA, pkg.request())
	if len(open.PartUploadRequests) != 2 {
		t.Fatalf("upload requests %+v", open.PartUploadRequests)
	}
	ctx := context.Background()
	c := v.client(tokA)
	st, _ := c.KsefSessionStatusWithResponse(ctx, open.Id)
	if st.JSON200 == nil || !st.JSON200.SessionInfo.Batch || st.JSON200.SessionInfo.Status.Code != 100 {
		t.Fatalf("status %s", st.Body)
	}
	for i, info := range open.PartUploadRequests {
		if info.Method != http.MethodPut || !strings.HasPrefix(info.Url, v.srv.URL+"/upload/") {
			t.Errorf("upload request %+v", info)
		}
		if code, body := upload(t, info, pkg.parts[i], nil); code != http.StatusCreated {
			t.Fatalf("part %d: HTTP %d %s", i+1, code, body)
		}
	}
	// Uploading a part again replaces it.
	if code, _ := upload(t, open.PartUploadRequests[0], pkg.parts[0], nil); code != http.StatusCreated {
		t.Fatalf("re-upload: %d", code)
	}
	cl, _ := c.KsefSessionCloseWithResponse(ctx, open.Id)
	if cl.JSON200 == nil || !cl.JSON200.Result {
		t.Fatalf("close %s", cl.Body)
	}
	if code, _ := upload(t, open.PartUploadRequests[1], pkg.parts[1], nil); code != http.StatusForbidden {
		t.Errorf("upload after close: %d", code)
	}
	v.settle()
	st, _ = c.KsefSessionStatusWithResponse(ctx, open.Id)
	si := st.JSON200.SessionInfo
	if si.Status.Code != 200 || si.InvoiceCount != 3 || si.SuccessfulInvoiceCount != 2 || si.FailedInvoiceCount != 1 || si.SessionStatus != ksefapi.Closed {
		t.Fatalf("processed batch: %+v", si)
	}
	list, _ := c.KsefSessionInvoicesWithResponse(ctx, open.Id)
	if list.JSON200 == nil || len(list.JSON200.Invoices) != 3 {
		t.Fatalf("invoices %s", list.Body)
	}
	for i, inv := range list.JSON200.Invoices {
		want := int32(200)
		if i == 2 {
			want = 430
		}
		if inv.Status.Code != want || inv.Ordinal != fmt.Sprint(i+1) || inv.InvoiceId == nil {
			t.Errorf("invoice %d: %+v", i+1, inv.Status)
		}
		if want == 200 {
			if ksef.ValidateNumber(*inv.KsefNumber) != nil || *inv.InvoiceHash != kcrypto.SHA256Base64(files[fmt.Sprintf("invoice-%03d.xml", i+1)]) {
				t.Errorf("invoice %d: %v %v", i+1, *inv.KsefNumber, *inv.InvoiceHash)
			}
			// Batch invoices have ids too.
			if s, _ := c.KsefInvoiceStatusWithResponse(ctx, *inv.InvoiceId); s.JSON200 == nil || s.JSON200.Invoices[0].Status.Code != 200 {
				t.Errorf("invoice status by id: %s", s.Body)
			}
		}
	}
	upo, _ := c.KsefSessionUpoWithResponse(ctx, open.Id)
	if upo.StatusCode() != http.StatusOK || bytes.Count(upo.Body, []byte("<Dokument>")) != 2 {
		t.Fatalf("UPO: HTTP %d %s", upo.StatusCode(), upo.Body)
	}
	if xmllint, err := exec.LookPath("xmllint"); err == nil {
		path := filepath.Join(t.TempDir(), "upo.xml")
		os.WriteFile(path, upo.Body, 0o600)
		xsd := filepath.Join(sharedDir(t), "ksef", "official", "faktury", "upo", "schemy", "upo-v4-3.xsd")
		if out, err := exec.Command(xmllint, "--nonet", "--noout", "--schema", xsd, path).CombinedOutput(); err != nil {
			t.Errorf("batch UPO fails the schema: %s", out)
		}
	}
}

func TestBatchUploadChecks(t *testing.T) {
	v := newEnv(t, nil)
	pkg := v.pack(zipOf(t, invoicesOf(t, 1)), 1)
	open := v.openBatch(tokA, pkg.request())
	info := open.PartUploadRequests[0]
	part := pkg.parts[0]
	cases := []struct {
		name string
		body []byte
		edit func(*http.Request)
		want int
	}{
		{"wrong token", part, func(r *http.Request) { r.Header.Set(UploadTokenHeader, "x") }, http.StatusUnauthorized},
		{"no token", part, func(r *http.Request) { r.Header.Del(UploadTokenHeader) }, http.StatusUnauthorized},
		{"short", part[:len(part)-16], nil, http.StatusBadRequest},
		{"long", append(bytes.Clone(part), make([]byte, 16)...), nil, http.StatusBadRequest},
		{"other bytes", bytes.Repeat([]byte{7}, len(part)), nil, http.StatusBadRequest},
		{"undeclared part", part, func(r *http.Request) { r.URL.Path = strings.TrimSuffix(r.URL.Path, "/1") + "/2" }, http.StatusBadRequest},
		{"unknown session", part, func(r *http.Request) { r.URL.Path = "/upload/nope/1" }, http.StatusNotFound},
		{"good", part, nil, http.StatusCreated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := upload(t, info, tc.body, tc.edit)
			if code != tc.want {
				t.Fatalf("HTTP %d, want %d: %s", code, tc.want, body)
			}
		})
	}
	// Past the upload window (1 part x 20 min) the part is refused and the session cancelled.
	v.clock.Advance(DefaultBatchPartWindow)
	if code, _ := upload(t, info, part, nil); code != http.StatusForbidden {
		t.Errorf("after the window: %d", code)
	}
	c := v.client(tokA)
	st, _ := c.KsefSessionStatusWithResponse(context.Background(), open.Id)
	if st.JSON200 == nil || st.JSON200.SessionInfo.Status.Code != 440 {
		t.Errorf("status %s", st.Body)
	}
	cl, _ := c.KsefSessionCloseWithResponse(context.Background(), open.Id)
	wantError(t, http.StatusBadRequest, cl.Body, cl.StatusCode(), ksef.CodeSessionClose)
}

func TestBatchPackageFailures(t *testing.T) {
	cases := []struct {
		name    string
		limit   int
		prepare func(v *env) (*batchPackage, ksefapi.KsefSessionOpenBatchRequest)
		skip    int // part not uploaded (1-based), 0 none
		want    int32
	}{
		{"missing part", 0, func(v *env) (*batchPackage, ksefapi.KsefSessionOpenBatchRequest) {
			p := v.pack(zipOf(v.t, invoicesOf(v.t, 2)), 2)
			return p, p.request()
		}, 2, sessionBadParts},
		{"package hash", 0, func(v *env) (*batchPackage, ksefapi.KsefSessionOpenBatchRequest) {
			p := v.pack(zipOf(v.t, invoicesOf(v.t, 2)), 2)
			r := p.request()
			r.BatchInfo.BatchHash = kcrypto.SHA256Base64([]byte("x"))
			return p, r
		}, 0, sessionBadParts},
		{"not a zip", 0, func(v *env) (*batchPackage, ksefapi.KsefSessionOpenBatchRequest) {
			p := v.pack(bytes.Repeat([]byte("not a zip "), 100), 2)
			return p, p.request()
		}, 0, sessionUnzip},
		{"too many invoices", 2, func(v *env) (*batchPackage, ksefapi.KsefSessionOpenBatchRequest) {
			p := v.pack(zipOf(v.t, invoicesOf(v.t, 3)), 1)
			return p, p.request()
		}, 0, sessionTooMany},
		{"wrong key", 0, func(v *env) (*batchPackage, ksefapi.KsefSessionOpenBatchRequest) {
			p := v.pack(zipOf(v.t, invoicesOf(v.t, 1)), 1)
			other, _ := v.encInfo()
			r := p.request()
			r.EncryptionInfo = other
			return p, r
		}, 0, sessionDecrypt},
		{"empty zip", 0, func(v *env) (*batchPackage, ksefapi.KsefSessionOpenBatchRequest) {
			p := v.pack(zipOf(v.t, nil), 1)
			return p, p.request()
		}, 0, sessionCancelled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, func(c *Config) {
				if tc.limit > 0 {
					c.MaxInvoicesPerSession = tc.limit
				}
			})
			pkg, req := tc.prepare(v)
			open := v.openBatch(tokA, req)
			for i, info := range open.PartUploadRequests {
				if i+1 == tc.skip {
					continue
				}
				if code, body := upload(t, info, pkg.parts[i], nil); code != http.StatusCreated {
					t.Fatalf("part %d: %d %s", i+1, code, body)
				}
			}
			c := v.client(tokA)
			if cl, _ := c.KsefSessionCloseWithResponse(context.Background(), open.Id); cl.JSON200 == nil {
				t.Fatalf("close: %s", cl.Body)
			}
			v.settle()
			st, _ := c.KsefSessionStatusWithResponse(context.Background(), open.Id)
			if st.JSON200 == nil || st.JSON200.SessionInfo.Status.Code != tc.want {
				t.Fatalf("status %s, want %d", st.Body, tc.want)
			}
			upo, _ := c.KsefSessionUpoWithResponse(context.Background(), open.Id)
			wantError(t, http.StatusBadRequest, upo.Body, upo.StatusCode(), ksef.CodeSessionNoUPO)
		})
	}
}

func TestOpenBatchErrors(t *testing.T) {
	v := newEnv(t, nil)
	pkg := v.pack(zipOf(t, invoicesOf(t, 1)), 1)
	c := v.client(tokA)
	cases := []struct {
		name string
		edit func(r *ksefapi.KsefSessionOpenBatchRequest)
		code ksef.Code
	}{
		{"v2", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.InvoiceVersion = ksefapi.V2 }, ksef.CodeInvoiceVersion},
		{"no parts", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.BatchInfo.BatchParts = nil }, ksef.CodeSessionInit},
		{"51 parts", func(r *ksefapi.KsefSessionOpenBatchRequest) {
			p := r.BatchInfo.BatchParts[0]
			r.BatchInfo.BatchParts = nil
			for i := range 51 {
				p.Ordinal = int32(i + 1)
				r.BatchInfo.BatchParts = append(r.BatchInfo.BatchParts, p)
			}
		}, ksef.CodeSessionInit},
		{"over 5 GB", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.BatchInfo.BatchSize = DefaultBatchMaxSize + 1 }, ksef.CodeInvoiceSize},
		{"part over 100 MB", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.BatchInfo.BatchParts[0].PartSize = 200 << 20 }, ksef.CodeInvoiceSize},
		{"part size not a block multiple", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.BatchInfo.BatchParts[0].PartSize = 17 }, ksef.CodeSessionInit},
		{"ordinals", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.BatchInfo.BatchParts[0].Ordinal = 2 }, ksef.CodeSessionInit},
		{"hash base64", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.BatchInfo.BatchHash = "?" }, ksef.CodeB64Decode},
		{"part hash length", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.BatchInfo.BatchParts[0].PartHash = b64([]byte("abc")) }, ksef.CodeSessionInit},
		{"IV", func(r *ksefapi.KsefSessionOpenBatchRequest) { r.EncryptionInfo.InitVector = b64(make([]byte, 8)) }, ksef.CodeAESIVLength},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := pkg.request()
			tc.edit(&req)
			resp, err := c.KsefSessionOpenBatchWithResponse(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), tc.code)
		})
	}
	// A batch session takes no ksefInvoiceSend.
	open := v.openBatch(tokA, pkg.request())
	s := &onlineSession{id: open.Id, key: pkg.key, c: c, v: v}
	resp, _ := c.KsefInvoiceSendWithResponse(context.Background(), s.request(readSample(t, "valid", sample)))
	wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeInvoiceSend)
}

func TestBatchLargePartStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 24 MB")
	}
	// Parts are streamed to disk and hashed on the way, not buffered: receiving 24 MB
	// allocates a small fraction of that.
	v := newEnv(t, nil)
	info, k := v.encInfo()
	blob := bytes.Repeat([]byte("0123456789abcdef"), (24<<20)/16)
	ct, _ := kcrypto.Encrypt(blob, k.Key, k.IV)
	req := ksefapi.KsefSessionOpenBatchRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: info, BatchInfo: ksefapi.BatchInfo{
		BatchSize: int64(len(blob)), BatchHash: kcrypto.SHA256Base64(blob),
		BatchParts: []ksefapi.BatchPartInfo{{Ordinal: 1, PartSize: int64(len(ct)), PartHash: kcrypto.SHA256Base64(ct)}},
	}}
	open := v.openBatch(tokA, req)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if code, body := upload(t, open.PartUploadRequests[0], ct, nil); code != http.StatusCreated {
		t.Fatalf("HTTP %d %s", code, body)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("receiving a 24 MB part allocated %d MB", alloc>>20)
	}
}

func TestBatchEntryOverSizeLimit(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.MaxInvoiceSize = 4096 })
	files := invoicesOf(t, 1) // 5.4 kB, over the lowered limit
	pkg := v.pack(zipOf(t, files), 1)
	open := v.openBatch(tokA, pkg.request())
	if code, body := upload(t, open.PartUploadRequests[0], pkg.parts[0], nil); code != http.StatusCreated {
		t.Fatalf("%d %s", code, body)
	}
	c := v.client(tokA)
	c.KsefSessionCloseWithResponse(context.Background(), open.Id)
	v.settle()
	list, _ := c.KsefSessionInvoicesWithResponse(context.Background(), open.Id)
	if list.JSON200 == nil || len(list.JSON200.Invoices) != 1 {
		t.Fatalf("%s", list.Body)
	}
	st := list.JSON200.Invoices[0].Status
	if st.Code != 430 || !strings.Contains(derefS(st.Details), "4096") {
		t.Errorf("status %d %q", st.Code, derefS(st.Details))
	}
}
