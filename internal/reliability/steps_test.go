package reliability

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// downloaderScenario sends a batch, then has the buyer download it with several queries while
// the downloader is killed in the middle of downloading result parts. Every query must complete
// with every invoice, each announced once (by event_id).
func downloaderScenario(n int) scenario {
	const queries = 3
	var parts atomic.Int64
	return scenario{
		name: "SIGKILL downloader during a query download", n: n, online: true,
		workers: []string{pipeline.Sender, pipeline.Poller, pipeline.Downloader},
		// Small parts, so that a query has several to download and a kill lands between them.
		opts: clusterOptions{emulator: emulator.Config{QueryMaxPartSize: 256 << 10}},
		after: func(t *testing.T, c *cluster, batch []*invoice, evs []natsx.Delivered, o *outcome) string {
			accepted := map[string]bool{} // KSeF numbers
			for _, a := range eventsOf[*events.InvoiceAccepted](evs) {
				accepted[a.KsefNumber] = true
			}
			points := killPoints(3, 4, 2, 20)
			c.ksef.setBefore(func(r *http.Request) bool {
				if isPath(r, http.MethodGet, "/v2/queries/*/parts/*") && points[parts.Add(1)] {
					// Kill while the part is on its way: the request never gets its answer.
					c.killAndRestart(pipeline.Downloader, 200*time.Millisecond)
					return true
				}
				return false
			})
			defer c.ksef.clear()
			from := time.Now().Add(-time.Hour)
			var ids []string
			for i := range queries {
				q := &events.QueryRequested{QueryID: fmt.Sprintf("buyer-%d", i+1), SubjectType: events.SubjectBuyer,
					From: events.At(from), To: events.At(time.Now().Add(time.Hour))}
				q.ContextNIP = demo.Buyer
				if err := c.pub.Publish(t.Context(), q, nil); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, q.QueryID)
			}
			all, ok := c.events.await(2*time.Minute, func(evs []natsx.Delivered) bool {
				done := 0
				for _, q := range eventsOf[*events.QueryCompleted](evs) {
					for _, id := range ids {
						if q.QueryID == id {
							done++
						}
					}
				}
				return done >= len(ids) || len(eventsOf[*events.DeadLettered](evs)) > 0
			}, c.reviveExited)
			if !ok {
				t.Errorf("the queries did not complete; %s", summary(all))
			}
			c.consumersIdle(20*time.Second, pipeline.Downloader)
			all = c.caughtUp()
			// Per query: every accepted invoice downloaded, each by one distinct event id.
			type key struct{ query, number string }
			seen := map[key]map[string]bool{}
			for _, d := range eventsOf[*events.InvoiceDownloaded](all) {
				k := key{d.QueryID, d.KsefNumber}
				if seen[k] == nil {
					seen[k] = map[string]bool{}
				}
				seen[k][d.EventID] = true
			}
			missing, dups := 0, 0
			for _, id := range ids {
				for num := range accepted {
					switch len(seen[key{id, num}]) {
					case 0:
						missing++
					case 1:
					default:
						dups++
					}
				}
			}
			for k := range seen {
				if !accepted[k.number] {
					t.Errorf("query %s downloaded %s, which the pipeline did not send", k.query, k.number)
				}
			}
			completed := map[string]int{}
			for _, q := range eventsOf[*events.QueryCompleted](all) {
				completed[q.QueryID]++
			}
			for _, id := range ids {
				if completed[id] == 0 {
					t.Errorf("query %s never completed", id)
				}
			}
			if missing > 0 || dups > 0 {
				t.Errorf("%d query×invoice downloads missing, %d seen under more than one event id", missing, dups)
			}
			o.lost += missing
			o.duplicates += dups
			o.deadLetters = len(eventsOf[*events.DeadLettered](all))
			return fmt.Sprintf("%d queries × %d invoices downloaded, %d SIGKILLs of the downloader mid-part",
				len(ids), len(accepted), c.kills(pipeline.Downloader))
		},
	}
}

// visualizerScenario renders every accepted invoice as a PDF while the visualizer is killed in
// the middle of uploads (before the upload reaches MinIO, and after MinIO stored it but before
// the visualizer heard back). Every invoice must end with one invoice.visualized (by event_id)
// whose PDF is stored with the announced SHA-256.
func visualizerScenario(n int) scenario {
	var uploads atomic.Int64
	return scenario{
		name: "SIGKILL visualizer during a PDF upload", n: n, online: true,
		workers: []string{pipeline.Sender, pipeline.Poller, pipeline.Visualizer},
		opts:    clusterOptions{s3Proxy: true, env: map[string]string{"KSEF_VISUALIZE_ACCEPTED": "true", "KSEF_VISUALIZE_FORMAT": "pdf"}},
		inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
			before, after := killPoints(4, 3, n/10, n*8/10), killPoints(5, 3, n/10, n*8/10)
			isUpload := func(r *http.Request) bool {
				return r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/"+c.buckets.Visualizations+"/")
			}
			c.s3.setBefore(func(r *http.Request) bool {
				if isUpload(r) && before[uploads.Add(1)] {
					c.killAndRestart(pipeline.Visualizer, 200*time.Millisecond)
					return true
				}
				return false
			})
			c.s3.setAfter(func(r *http.Request, resp *http.Response) {
				if resp != nil && isUpload(r) && after[uploads.Load()] {
					c.killAndRestart(pipeline.Visualizer, 200*time.Millisecond)
				}
			})
			return func() string {
				return fmt.Sprintf("%d SIGKILLs of the visualizer mid-upload", c.kills(pipeline.Visualizer))
			}
		},
		after: func(t *testing.T, c *cluster, batch []*invoice, evs []natsx.Delivered, o *outcome) string {
			want := len(eventsOf[*events.InvoiceAccepted](evs))
			all, ok := c.events.await(2*time.Minute, func(evs []natsx.Delivered) bool {
				ids := map[string]bool{}
				for _, v := range eventsOf[*events.InvoiceVisualized](evs) {
					ids[v.InvoiceID] = true
				}
				return len(ids) >= want
			}, c.reviveExited)
			if !ok {
				t.Errorf("not every accepted invoice was rendered; %s", summary(all))
			}
			c.consumersIdle(30*time.Second, pipeline.Visualizer)
			all = c.caughtUp()
			byInvoice := map[string]map[string]*events.InvoiceVisualized{}
			for _, v := range eventsOf[*events.InvoiceVisualized](all) {
				if byInvoice[v.InvoiceID] == nil {
					byInvoice[v.InvoiceID] = map[string]*events.InvoiceVisualized{}
				}
				byInvoice[v.InvoiceID][v.EventID] = v
			}
			missing, dups, bad := 0, 0, 0
			for _, inv := range batch {
				vs := byInvoice[inv.id]
				switch len(vs) {
				case 0:
					missing++
					continue
				case 1:
				default:
					dups++
				}
				for _, v := range vs {
					rc, info, err := c.store.Get(t.Context(), v.Document.Bucket, v.Document.Key)
					if err != nil {
						bad++
						t.Errorf("%s: PDF %s: %v", inv.id, v.Document.Key, err)
						continue
					}
					data, _ := io.ReadAll(rc)
					rc.Close()
					if sum := kcrypto.SHA256Base64(data); sum != v.Document.SHA256 || info.SHA256 != sum || !bytes.HasPrefix(data, []byte("%PDF-")) {
						bad++
						t.Errorf("%s: stored PDF SHA-256 %s (metadata %s), announced %s", inv.id, sum, info.SHA256, v.Document.SHA256)
					}
				}
			}
			if missing > 0 || dups > 0 {
				t.Errorf("%d invoices without a rendering, %d rendered under more than one event id", missing, dups)
			}
			o.lost += missing
			o.duplicates += dups
			return fmt.Sprintf("%d PDFs stored and announced once", want-missing-bad)
		},
	}
}

// machine describes where the table was measured.
func machine() string {
	return fmt.Sprintf("%s/%s, %d cores", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}
