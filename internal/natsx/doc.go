// Package natsx holds all of the pipeline's NATS client code (an in-process server is in
// internal/embedded/natsserver): configuration from the environment, connecting (credentials,
// nkeys, TLS, reconnecting forever), the pipeline's JetStream stream, key-value buckets, and the
// event [Publisher].
//
// # Settings
//
//	KSEF_NATS_URL              server URLs, comma-separated (nats://127.0.0.1:4222)
//	KSEF_NATS_CREDS            .creds file (JWT and nkey seed)
//	KSEF_NATS_NKEY             nkey seed file
//	KSEF_NATS_USER             user name ...
//	KSEF_NATS_PASSWORD         ... and password
//	KSEF_NATS_TOKEN            token
//	KSEF_NATS_TLS_CA           CA certificate (PEM) verifying the server
//	KSEF_NATS_TLS_CERT         client certificate (PEM), with ...
//	KSEF_NATS_TLS_KEY          ... its key
//	KSEF_NATS_TLS_INSECURE     true: skip server verification (tests only)
//	KSEF_NATS_NAME             connection name (ksef-pipeline)
//	KSEF_SUBJECT_PREFIX        subject prefix, also names the stream (none)
//	KSEF_NATS_STREAM_MAX_AGE   how long events are kept (30d)
//	KSEF_NATS_DUPLICATE_WINDOW how long Nats-Msg-Ids are remembered (10m)
//	KSEF_NATS_REPLICAS         replicas of the stream and of every KV bucket (1)
//	KSEF_MAX_INLINE_SIZE       limit of inline invoice payloads in bytes (262144)
//
// # The stream
//
// One stream, KSEF (KSEF_<PREFIX> with a prefix), holds every event and
// dead letter: <prefix>.invoice.>, session.>, query.> and dlq.>. It uses
// limits retention, so events stay for the max age whatever consumers do:
// each worker has its own durable consumer, and audit readers can replay.
//
// # On a cluster
//
// KSEF_NATS_REPLICAS gives the stream, every KV bucket the pipeline makes (state, limits, marks,
// sessions, the workers' failure counts) and, through the stream, every consumer that many
// replicas. KSEF_NATS_URL should list every node, so that a client fails over when its node goes.
// Provisioning (the stream, the buckets, a worker's consumer) is create-or-update and retried
// with back-off while the cluster forms or a concurrent creator races ([Retry],
// [ProvisionTransient]), so any number of workers may start at once, before the cluster has a
// meta leader.
package natsx
