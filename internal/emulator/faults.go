package emulator

import (
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// faults draws the injected failures from one seeded generator.
type faults struct {
	cfg   Faults
	mu    sync.Mutex
	used  []int // answers given per Faults.Hostile entry
	rng   *mrand.Rand
	n     int // rotates the kinds of 5xx
	hangs int // alternates upload hangs before and after storing
}

func newFaults(cfg Faults, seed uint64) *faults {
	return &faults{cfg: cfg, rng: mrand.New(mrand.NewPCG(seed^0xfa17, seed)), used: make([]int, len(cfg.Hostile))}
}

func (f *faults) applies(op ksef.Operation) bool {
	if len(f.cfg.Ops) == 0 {
		return op != ksef.OpBatchPartUpload && op != ""
	}
	return slices.Contains(f.cfg.Ops, op)
}

// chance draws true with probability p.
func (f *faults) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < p
}

// delay is the latency to add to one call.
func (f *faults) delay() time.Duration {
	c := &f.cfg
	if c.Latency <= 0 && c.Jitter <= 0 && c.SlowRate <= 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d := c.Latency
	if c.Jitter > 0 {
		d += time.Duration(f.rng.Int64N(int64(c.Jitter) + 1))
	}
	if c.SlowRate > 0 && f.rng.Float64() < c.SlowRate {
		d += c.SlowDelay
	}
	return d
}

type faultKind int

const (
	faultNone faultKind = iota
	faultTooMany
	faultServer
)

// pick draws the failure of one call, if any, and for 5xx which form it takes.
func (f *faults) pick() (faultKind, int) {
	c := &f.cfg
	if c.TooManyRate <= 0 && c.ServerErrorRate <= 0 {
		return faultNone, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.rng.Float64()
	switch {
	case u < c.TooManyRate:
		return faultTooMany, 0
	case u < c.TooManyRate+c.ServerErrorRate:
		f.n++
		return faultServer, f.n
	}
	return faultNone, 0
}

// ambiguous draws whether a send or close that took effect is answered 5xx anyway, and in
// which form: alternately an HTML 502 from the proxy and a JSON 500 from the service.
func (f *faults) ambiguous() (bool, int) {
	if !f.chance(f.cfg.AmbiguousRate) {
		return false, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.n%2 == 0 {
		return true, 3
	}
	return true, 0
}

func (f *faults) stuck() bool         { return f.chance(f.cfg.StuckRate) }
func (f *faults) expireEarly() bool   { return f.chance(f.cfg.EarlyExpiryRate) }
func (f *faults) batchOpenFail() bool { return f.chance(f.cfg.BatchOpenFailRate) }
func (f *faults) batchStuck() bool    { return f.chance(f.cfg.BatchStuckRate) }

// oneOf draws one of codes, or 0 without the probability p.
func (f *faults) oneOf(p float64, codes []int) int {
	if p <= 0 || len(codes) == 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() >= p {
		return 0
	}
	return codes[f.rng.IntN(len(codes))]
}

// packageFail draws the status a closed package fails with as a whole, 0 for none.
func (f *faults) packageFail() int { return f.oneOf(f.cfg.PackageFailRate, f.cfg.PackageFailCodes) }

// cancel draws the status an invoice that would be accepted ends with instead, 0 for none.
func (f *faults) cancel() ksef.StatusCode {
	return ksef.StatusCode(f.oneOf(f.cfg.CancelRate, f.cfg.CancelCodes))
}

// uploadHang draws whether a part upload hangs, and whether after storing the part: the two
// alternate, so that a run with a few hangs sees both.
func (f *faults) uploadHang() (hang, afterStore bool) {
	if !f.chance(f.cfg.UploadHangRate) {
		return false, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangs++
	return true, f.hangs%2 == 0
}

// injectFault applies the call faults to a request and reports whether it answered it.
func (e *Emulator) injectFault(w http.ResponseWriter, r *http.Request, op ksef.Operation) bool {
	if !e.faults.applies(op) {
		return false
	}
	if d := e.faults.delay(); d > 0 {
		if err := e.cfg.Sleep(r.Context(), d); err != nil {
			return true // the client has gone
		}
	}
	kind, n := e.faults.pick()
	switch kind {
	case faultTooMany:
		e.stats.fault("429")
		e.stats.tooMany()
		writeError(w, &apiError{
			status:     http.StatusTooManyRequests,
			code:       ksef.CodeTooManyRequests,
			details:    "Przekroczono limit żądań. Spróbuj ponownie po " + strconv.Itoa(retryAfterSeconds(e.cfg.Faults.RetryAfter)) + " sekundach.",
			retryAfter: e.cfg.Faults.RetryAfter,
		})
		return true
	case faultServer:
		e.stats.fault("5xx")
		e.writeServerError(w, op, n%4)
		return true
	}
	return false
}

const (
	html502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	html504 = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	html503 = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

// writeServerError writes one of the 5xx forms seen in practice: 0 an HTML 502 page from the
// proxy, 1 an HTML 503 page, 2 an empty 503, 3 a JSON 500 Error from the service.
func (e *Emulator) writeServerError(w http.ResponseWriter, op ksef.Operation, form int) {
	h := w.Header()
	h.Del("Content-Length")
	switch form {
	case 1, 2:
		if form == 1 {
			h.Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, html503)
			return
		}
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	case 3:
		writeError(w, errf(http.StatusInternalServerError, failureCode(op), "Wystąpił nieoczekiwany błąd"))
	default:
		h.Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, html502)
	}
}
