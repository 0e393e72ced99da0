// Package downloader is the pipeline's downloader worker: it turns a query.requested into the
// invoices of a context stored in object storage, one invoice.downloaded per invoice and one
// query.completed (the seed's process "Wyszukanie i pobranie faktur").
//
// # Flow of one query
//
//  1. Validate: a known subject type, from before to, and a range of at most three months
//     (KSeF's limit). A request that can never succeed is a *RequestError, which the worker
//     dead-letters at once with the reason. A missing to means when the request was made
//     (its occurred_at), so that a late redelivery plans the same range; for an incremental
//     query it means now.
//  2. Start a KSeF query with a fresh AES key (ksef.Client.NewEncryption, StartQuery).
//  3. Poll its status with growing delays (PollInterval doubling to PollMaxInterval, or KSeF's
//     Retry-After) for at most PollBudget in one delivery; then snooze the message.
//  4. Fetch every part: the encrypted stream is stored as it arrives (query-parts bucket) and
//     decrypted in the same pass into a temporary file, because archive/zip needs random
//     access. No part is ever held in memory.
//  5. Store each invoice XML (invoices bucket, storage.Layout.Downloaded: by context NIP and
//     KSeF number, application/xml, metadata ksef-number and sha256, checked against the
//     package's _metadata.json) and publish invoice.downloaded. Parallelism invoices of a part
//     go at once.
//  6. Check the part sizes add up to packageSize and the invoices to numberOfInvoices (a
//     mismatch starts the window again on the next delivery, and dead-letters after the
//     worker's failure budget).
//  7. A truncated result continues with a new query from its lastPermanentStorageDate; the
//     overlap (both ends of a range are inclusive) is deduplicated by KSeF number.
//  8. Publish query.completed with the invoice count, the stored parts, the number of
//     continuations and the high-water mark.
//
// # Hostile packages
//
// A part is read no further than what the query's packageSize leaves for it nor than
// MaxPartSize (KSeF's parts are at most 50 MiB), and a part that
// fails to decrypt or unzip, or whose CRC is wrong, is retried (a transfer gone wrong). A part
// that decrypts and unzips but that no KSeF package looks like fails the query at once with a
// *RequestError naming the defect (a new query would get the same bytes): entry names that are
// not clean relative UTF-8 paths (.., absolute, NUL or control characters, backslash, over 255
// bytes), two entries of one name, an XML declaring more than MaxInvoiceSize, entries declaring
// together more than 200 times the part's size (a ZIP bomb), an entry expanding past its
// declared size, no _metadata.json (KSeF adds it to every package), an index entry without a
// valid ksefNumber or an invoiceHash, an invoice listed twice, listed but absent, or present
// but not listed. All but the entry expanding past its declared size are found before any
// invoice of the part is stored.
//
// # Redelivery and the AES key
//
// A query's key exists only in this process's memory, with the query's progress, keyed by the
// event id of the query.requested. A snoozed or retried message that comes back to the same
// process resumes the same KSeF query; after a restart, or on another replica, the query starts
// again with a new key. That is harmless: object keys and event ids are deterministic
// (invoice.downloaded is "nip:query_id:ksef_number"), so what an earlier attempt stored or
// published is overwritten with the same bytes or dropped as a duplicate. State idle for
// StateTTL is forgotten and its key zeroed.
//
// # Incremental sync
//
// With incremental set, the range starts at the high-water mark of (context, subject type),
// kept in a shared compare-and-set store (a JetStream KV bucket), or at from when there is
// none, and ends at to or now, in windows of at most three months. The mark moves only after
// every invoice of the range is stored and announced, to the query's start minus Overlap:
// this API does not expose KSeF's own HWM, and invoices may still be stored with a date a
// little in the past. The KSeF numbers seen at or after the new mark are kept with it, so the
// next window, which re-reads that overlap, skips them. The mark also records the query that
// moved it, so a redelivered query.requested republishes the same query.completed. Two queries
// moving the same mark at once: the second gets ErrMarkMoved and is retried from the new mark.
//
// # Request limits
//
// Every KSeF call goes through the client's limiter (ksefconn, ratelimit): a slot further away
// than the limiter's maximum wait, or a 429 whose Retry-After is longer than the client waits
// itself, becomes a *SnoozeError (worker.Snooze), not a failure.
//
// # Settings (SettingsFromEnv)
//
//	KSEF_DOWNLOADER_TEMP_DIR           directory of the decrypted parts (os.TempDir())
//	KSEF_DOWNLOADER_CONCURRENCY        queries at once per replica (2)
//	KSEF_DOWNLOADER_PARALLELISM        invoices of a part stored at once (4)
//	KSEF_DOWNLOADER_POLL_INTERVAL      first status poll delay (1s)
//	KSEF_DOWNLOADER_POLL_MAX_INTERVAL  longest poll delay (30s)
//	KSEF_DOWNLOADER_POLL_BUDGET        polling per delivery before snoozing (2m)
//	KSEF_DOWNLOADER_OVERLAP            high-water mark lag behind the query's start (10m)
//	KSEF_DOWNLOADER_MAX_INVOICE_SIZE   largest invoice XML accepted from a package (16 MiB)
//	KSEF_DOWNLOADER_MAX_PART_SIZE      largest encrypted result part read (50 MiB + 16 bytes)
//
// The high-water marks live in the pipeline's KV bucket <stream>_MARKS (internal/pipeline).
// Buckets come from storage (KSEF_S3_BUCKET_INVOICES, KSEF_S3_BUCKET_QUERY_PARTS), KSeF's URL,
// tokens and limits from ksefconn (KSEF_API_URL, KSEF_TOKENS, KSEF_TOKENS_FILE, KSEF_LIMITS, ...).
//
// # Memory
//
// One part at a time per query is on disk; memory holds a few 32 KiB buffers, the index of
// one part and the store's upload buffers (for S3 up to twice its part size), whatever the
// part's size: BenchmarkLargePart reports the peak heap for parts of 16 to 256 MiB.
package downloader
