// Package reliability holds the pipeline's reliability and security suite (its tests are the
// package): batches of invoices go through real NATS JetStream with file storage, a real MinIO
// server and the KSeF emulator over HTTP while workers are killed with SIGKILL, NATS is restarted,
// MinIO is stopped and the emulator misbehaves, and the suite checks that every invoice ends
// accepted or rejected, none is lost, none reaches KSeF twice and a consumer deduplicating by
// event_id sees one outcome per invoice. It also feeds a corpus of bad input
// (testdata/bad-input), checks that secrets never reach the logs, and tests the least-privilege
// NATS permissions of deploy/nats/permissions.conf.
//
// The workers run as separate processes: the test binary runs itself with
// KSEF_RELIABILITY_WORKER=<name>, which runs pipeline.ServiceMain exactly as services/<name> does,
// configured by the environment. NATS, MinIO and the emulator stay in (or under) the test
// process, so that they outlive the workers.
//
// Run with -update to rewrite the results table in docs/reliability.md.
package reliability
