// Package emulator is a standalone KSeF REST API 2.0 service for development, CI, reliability
// tests and benchmarks. It implements the contract pkg/ksef/ksefapi/openapi.yaml
// (ksefapi.StrictServerInterface) faithfully to the seed and the Ministry's documentation:
// real RSA-OAEP key unwrapping and AES-256-CBC decryption, FA(3) XSD validation, asynchronous
// processing, KSeF numbers with CRC-8, UPO v4-3, batch sessions with part uploads, encrypted
// ZIP query results, per-context request limits, and the failure modes seen in practice
// (../shared/ksef/in-practice.md) as settings.
//
//	e, err := emulator.New(emulator.Config{Tokens: map[string]string{"dev-token": "5265877635"}, SchemaDir: dir})
//	defer e.Close()
//	http.ListenAndServe("127.0.0.1:8089", e.Handler())
//
// # Time
//
// State is a function of the clock (Config.Now): an invoice sent at t shows 100 until
// t+ProcessingDelay/2, 150 until t+ProcessingDelay, then its outcome (once a worker has
// processed it; WaitIdle waits for that); an accepted invoice is permanently stored
// StorageDelay after its acquisition date, and only then visible to ksefInvoiceGet and
// queries. Interactive sessions close themselves SessionLifetime after opening. With a fake
// clock, tests step through all of it without waiting.
//
// # Invoice processing
//
// ksefInvoiceSend checks only the request's form synchronously: required fields (1208), the
// hash's base64 (1005), the declared size against MaxInvoiceSize (1202; 3 MB by default, KSeF's
// limit with attachments), the session (1109 unknown, 1110 another context's, 1204 closed,
// expired, a batch session, or over MaxInvoicesPerSession — the seed has no per-invoice "limit"
// status, so the send is refused). Everything about the content is decided asynchronously and
// shows as the invoice's status. The emulator verifies exactly what the Ministry lists in
// official/faktury/weryfikacja-faktury.md and nothing else (arithmetic such as totals that do
// not add up is not on the list, so it is accepted), in this order:
//
//	rule (weryfikacja-faktury.md)                        status  details
//	AES-256-CBC/PKCS#7 with the session's key             435     -
//	invoice hash and size as declared (online)            430     names invoiceSize / SHA-256
//	UTF-8 only, prolog naming no other encoding           430     unsupported encoding
//	UTF-8 without a byte order mark                       430     byte order mark
//	no processing instructions                            430     processing instructions
//	no discouraged characters (the listed ranges)         430     the character, U+XXXX
//	XML 1.0, well-formed, FA(3) schema of the session     430     the validator's first error
//	1 MB without attachments, 3 MB with                   430     the size and the limit
//	attachments only in batch sessions                    415     online: always; batch: with RejectAttachments
//	permission: seller NIP = context NIP                  410     both NIPs
//	P_1 not after the day of acceptance (in Poland)       450     P_1 and the day
//	NIP check digits (Podmiot1/2/3, PodmiotUpowazniony,   450     the party (Environment "prod" only)
//	  NIP in Podmiot3's IDWew)
//	seller NIP + RodzajFaktury + P_2 unique               440     extensions originalSessionReferenceNumber, originalKsefNumber
//
// The list names a code only for duplicates (440); the others are the seed's invoice statuses
// whose descriptions fit: 430 "Błąd weryfikacji pliku faktury" for everything about the file,
// 450 "Błąd weryfikacji semantyki dokumentu faktury" for the date and NIP rules, 415 "Brak
// możliwości wysyłania faktury z załącznikiem", 410 "Nieprawidłowy zakres uprawnień". The
// Ministry's one exception to attachments online (a technical correction of an offline invoice)
// has no request field in the seed's ksefInvoiceSend, so it cannot arise. Invoices of a batch go
// through the same steps (without the declared hash and size, which batchInfo covers: 405).
// docs/ksef-rules.md lists the tests of each rule.
//
// # Sessions
//
// Session status codes are the Ministry's: interactive 100 open, 170 closed while invoices are
// processed, 200 processed with at least one accepted, 445 none accepted, 440 closed without
// invoices; batch 100 open, 150 processing, 200, 405 (a part missing, or the package's size or
// hash differs from batchInfo), 420 (more than MaxInvoicesPerSession invoices), 430 (not a
// ZIP), 435 (a part does not decrypt), 440 (not closed within the upload window), 445.
// Closing an interactive session again answers true; closing a batch session again answers 400
// with 1106 and details "Status sesji {code} uniemożliwia jej zamknięcie" (KSeF 2.0's 21180),
// and the package is not processed again. The UPO (ksefSessionUpo) exists once
// the session is closed and all its invoices are final, and only with at least one accepted
// invoice; before that the answer is 400 with 1111. It lists the accepted invoices and is
// valid against upo-v4-3.xsd (the receiving entity's name is the schema's fixed value).
//
// Batch sessions hand out one upload URL per part on the emulator itself
// (PUT /upload/{sessionId}/{ordinal}, header X-KSeF-Upload-Token). Each part is streamed to
// disk while its size and SHA-256 are checked against the declaration: 201 stored, 400 differs,
// 401 wrong upload token, 403 closed or past the upload window (parts x BatchPartWindow).
// Uploading a part again replaces it. Closing decrypts the parts in order into the package,
// checks batchSize and batchHash, unzips it and processes every file as an invoice.
//
// # Queries
//
// ksefInvoiceQueryStart checks the PermanentStorage range (from <= to, at most 3 months) and
// subject type (1301), unwraps the key like a session (1005, 1002, 1003, 1302), and takes a
// snapshot of the permanently stored invoices in the range where the context is the seller
// (subject1), the buyer's NIP (subject2), a Podmiot3's NIP (subject3) or PodmiotUpowazniony's
// NIP (subjectAuthorized), ordered by permanent storage date, at most QueryMaxInvoices of them
// (then isTruncated, and lastPermanentStorageDate to continue from). The spec's status has no
// "in progress" value, so the status (and the parts) answer HTTP 503 with code 1303 (1304)
// and Retry-After until the result is ready (QueryDelay, then the parts being built): a
// status answered 200 is always complete. Each part is a standalone ZIP holding
// <ksefNumber>.xml files and _metadata.json ({"invoices": [...]}, with the Ministry's
// InvoiceMetadata field names: ksefNumber, invoiceNumber, issueDate, acquisitionDate,
// permanentStorageDate, seller.nip, buyer.identifier, invoiceHash, ...), AES-256-CBC encrypted
// with the query's key and IV; packageSize is the sum of the encrypted parts. Results expire
// after QueryResultTTL (then 404). Queries of another context are unknown (404), not 403.
//
// # Errors and HTTP statuses
//
// Every error is the spec's Error with a seed code. 400 for bad input and wrong state, 401
// for a missing or unknown token (code 1001 AUTH_CHALLENGE, the seed's only authorization
// code), 403 for another context's session (1110), 404 for unknown sessions (1109),
// invoices (1207: also an invoice not yet permanently stored, with details saying so) and
// queries (1303/1304), 413 for bodies over the limit (1202 for invoice-carrying operations),
// 429 for request limits (code "429", description "Too Many Requests", Retry-After), 503 for
// queries in progress, 500 for panics (the operation's failure code, e.g. 1204 for a send).
// A body that cannot be decoded gets 400 with the operation's input code: 1102 for opening
// sessions, 1301 for queries, 1203 for validation, 1208 otherwise; a key that cannot be
// unwrapped gets 1102 (1302 for queries) without saying why.
//
// # Limits and faults
//
// Requests are counted per context and operation in sliding windows of a second, a minute
// and an hour (ksef.ProductionLimits, with interactive close at 10/30/120 and batch close at
// 10/20/60), optionally multiplied (test environment 10x) or off. A refused request is not
// counted; its Retry-After is the time until the window frees a place. More than
// LockoutAfter 429s within LockoutWindow lock the operation for the context, doubling from
// LockoutBase up to LockoutMax. Faults (latency, slow calls, 429s, 5xx as HTML 502/503 pages,
// empty 503s or JSON 500s, sends and closes that succeed but answer 5xx, invoices stuck at
// 150, sessions expiring early) are drawn from a generator seeded with Config.Seed. The call
// faults apply to batch part uploads only when Faults.Ops lists batchPartUpload. Faults of the
// batch path and of outcomes, each counted in Stats.Faults under its name:
//
//   - packageFail (PackageFailRate, PackageFailCodes): a closed package fails as a whole. The
//     close answers true; the session shows 150 while it is processed, then the drawn status
//     (default 405, 420, 430 or 435; 415 and 500 may be chosen) with its description and no
//     details; it lists no invoices (invoiceCount 0), nothing reaches Stats.Sends, the UPO
//     answers 1111.
//   - batchOpenFail (BatchOpenFailRate): a batch session shows 415 "Błąd odszyfrowania
//     dostarczonego klucza" from its opening on. Parts are still taken (201) and the close
//     answers true, but nothing is processed: it stays at 415 and lists no invoices.
//   - cancel (CancelRate, CancelCodes): an invoice, interactive or batch, that passed every check
//     before the duplicate check ends with the drawn status instead of 200 or 440 (default 405,
//     500 or 550, with the seed's descriptions; 550 with its details). It gets no KSeF number,
//     does not count in Stats.Sends and is no original for the duplicate check, so the same
//     invoice sent again can be accepted. Invoices failing an earlier check keep their status.
//   - batchStuck (BatchStuckRate, BatchStuckFor): a closed batch session shows 150 with no
//     invoices listed (invoiceCount 0, UPO 1111) for BatchStuckFor from its close, then its
//     processing shows as usual, its invoices received at that time.
//   - uploadHang (UploadHangRate, UploadHangFor): a part upload hangs UploadHangFor before it is
//     answered, alternately without storing the part (then an HTML 504 page from nginx) and
//     after storing it (then 201). A client that gives up sees a timeout either way.
//
// # Introspection
//
// Stats (also GET /emulator/stats) counts answers per operation and status, 429s, faults,
// invoice outcomes and sends per invoice (SendCount proves "sent exactly once"). GET
// /openapi.yaml serves the contract, GET /docs a self-contained HTML rendering of it, GET
// /healthz liveness.
//
// # Storage
//
// Memory holds sessions, queries and invoice metadata (about 1 kB per invoice); the XML of
// accepted invoices, batch parts and query result parts live on disk (TempDir), so that
// memory does not grow with the invoices' size. With DataDir the key pair (key.pem), the
// invoices' XML (invoices/) and an append-only JSON-lines journal of sessions and invoices
// survive restarts. Session keys are never written, so sessions open at a restart
// are closed by it, batches not yet processed end with 500 and invoices caught mid-processing
// with 550. Queries are not kept.
package emulator
