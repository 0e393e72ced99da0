package ksef

import "time"

// Operation names one of the 16 operations of the KSeF REST API 2.0 (its operationId).
type Operation string

const (
	OpPublicKey          Operation = "ksefPublicKey"
	OpSessionOpenOnline  Operation = "ksefSessionOpenOnline"
	OpSessionOpenBatch   Operation = "ksefSessionOpenBatch"
	OpSessionStatus      Operation = "ksefSessionStatus"
	OpSessionClose       Operation = "ksefSessionClose"
	OpSessionUpo         Operation = "ksefSessionUpo"
	OpSessionInvoices    Operation = "ksefSessionInvoices"
	OpInvoiceSend        Operation = "ksefInvoiceSend"
	OpInvoiceStatus      Operation = "ksefInvoiceStatus"
	OpInvoiceGet         Operation = "ksefInvoiceGet"
	OpInvoiceQueryStart  Operation = "ksefInvoiceQueryStart"
	OpInvoiceQueryStatus Operation = "ksefInvoiceQueryStatus"
	OpInvoiceQueryResult Operation = "ksefInvoiceQueryResult"
	OpInvoiceGenerate    Operation = "ksefInvoiceGenerate"
	OpInvoiceValidate    Operation = "ksefInvoiceValidate"
	OpInvoiceVisualize   Operation = "ksefInvoiceVisualize"
	// OpBatchPartUpload is the upload of one batch part to the URL ksefSessionOpenBatch gave; it is
	// not an API operation and KSeF does not limit it.
	OpBatchPartUpload Operation = "batchPartUpload"
)

// Operations lists the 16 operations of the API.
func Operations() []Operation {
	return []Operation{OpPublicKey, OpSessionOpenOnline, OpSessionOpenBatch, OpSessionStatus, OpSessionClose,
		OpSessionUpo, OpSessionInvoices, OpInvoiceSend, OpInvoiceStatus, OpInvoiceGet, OpInvoiceQueryStart,
		OpInvoiceQueryStatus, OpInvoiceQueryResult, OpInvoiceGenerate, OpInvoiceValidate, OpInvoiceVisualize}
}

// Idempotent reports whether repeating the operation after an unknown outcome (a 5xx or a lost
// answer) is harmless. Only sending an invoice is not: the first request may have been taken
// (in-practice.md: "5xx answers that succeeded"), and a second one is a second send.
func (op Operation) Idempotent() bool { return op != OpInvoiceSend }

// Window is a request limit in the three sliding windows KSeF counts at once; 0 means no limit in
// that window.
type Window struct {
	PerSecond int `json:"perSecond"`
	PerMinute int `json:"perMinute"`
	PerHour   int `json:"perHour"`
}

// Spans are the lengths of the three windows, in the order of Window's fields.
var Spans = [3]time.Duration{time.Second, time.Minute, time.Hour}

// Limits returns the three limits in the order of Spans.
func (w Window) Limits() [3]int { return [3]int{w.PerSecond, w.PerMinute, w.PerHour} }

// Scale multiplies every limit (the Ministry's test environment uses 10x), keeping at least 1.
func (w Window) Scale(f float64) Window {
	s := func(n int) int {
		if n == 0 {
			return 0
		}
		return max(1, int(float64(n)*f))
	}
	return Window{s(w.PerSecond), s(w.PerMinute), s(w.PerHour)}
}

// Limits maps each operation to its own limit: KSeF keeps a separate counter per endpoint and
// context (official/limity/limity-api.md). An operation missing from the map is not limited.
type Limits map[Operation]Window

// ProductionLimits returns the production limits (official/limity/limity-api.md, in-practice.md).
// They are a default, not a constant: the Ministry changes them and publishes those in force.
func ProductionLimits() Limits {
	other := Window{10, 30, 120}
	return Limits{
		OpPublicKey:          other,
		OpSessionOpenOnline:  {10, 30, 120},
		OpSessionOpenBatch:   {10, 20, 60},
		OpSessionClose:       {10, 20, 60}, // the stricter of online (10/30/120) and batch (10/20/60) close
		OpSessionStatus:      {10, 120, 1200},
		OpSessionUpo:         {10, 120, 1200},
		OpSessionInvoices:    {10, 20, 200},
		OpInvoiceSend:        {10, 30, 180},
		OpInvoiceStatus:      {30, 120, 1200},
		OpInvoiceGet:         {8, 16, 64},
		OpInvoiceQueryStart:  {8, 16, 20},
		OpInvoiceQueryStatus: {10, 60, 600},
		OpInvoiceQueryResult: {10, 60, 600},
		OpInvoiceGenerate:    other,
		OpInvoiceValidate:    other,
		OpInvoiceVisualize:   other,
	}
}

// Scale returns the limits multiplied by f.
func (l Limits) Scale(f float64) Limits {
	out := make(Limits, len(l))
	for op, w := range l {
		out[op] = w.Scale(f)
	}
	return out
}
