// Package storage holds all of the pipeline's object storage code: one
// [Store] interface with an S3 implementation on minio-go ([NewS3]) and a
// local-directory implementation ([NewLocal]) for single-process runs, the
// bucket names ([Buckets]) and where each artifact goes ([Layout]).
//
// Every object's SHA-256 (standard base64) is computed while it is
// streamed in and kept as metadata ("sha256"), so events can carry it in
// an ObjectRef without a second read. Errors are classified: [ErrNotFound]
// (and [ErrBucketNotFound]), [ErrInvalid] for arguments no retry can fix,
// and [IsTransient] for a server that is down or overloaded.
//
// # Settings
//
//	KSEF_STORAGE                   s3 or local (s3 when KSEF_S3_ENDPOINT is set)
//	KSEF_STORAGE_DIR               directory of the local store
//	KSEF_S3_ENDPOINT               host:port of the S3 server
//	KSEF_S3_ACCESS_KEY             access key
//	KSEF_S3_SECRET_KEY             secret key
//	KSEF_S3_REGION                 region (optional)
//	KSEF_S3_TLS                    true: HTTPS
//	KSEF_S3_CA_FILE                PEM CA verifying the server
//	KSEF_S3_PART_SIZE              multipart part size, e.g. 8MiB (default; at least 5MiB)
//	KSEF_S3_BUCKET_INVOICES        ksef-invoices
//	KSEF_S3_BUCKET_UPO             ksef-upo
//	KSEF_S3_BUCKET_QUERY_PARTS     ksef-query-parts
//	KSEF_S3_BUCKET_VISUALIZATIONS  ksef-visualizations
//
// # Memory
//
// An S3 upload holds at most about twice the part size (8 MiB by default):
// objects up to one part are read into memory and sent with their digest in
// one request; larger ones, including streams of unknown length, are sent
// in parts and get their digest attached by a server-side copy afterwards.
// An upload of unknown length can be up to 10,000 parts (80 GiB at 8 MiB).
package storage
