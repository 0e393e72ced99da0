package storage

// Metadata keys the pipeline sets on the objects it stores (besides MetaSHA256).
const (
	MetaInvoiceID     = "invoice-id"
	MetaInvoiceNumber = "invoice-number"
	MetaKsefNumber    = "ksef-number"
	MetaSessionID     = "session-id"
	MetaQueryID       = "query-id"
)
