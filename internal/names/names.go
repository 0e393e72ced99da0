// Package names holds the names the pipeline's parts find each other by: its workers (also their
// durable consumers' names and their dead letters' stage), its stream and its KV buckets. Every
// process derives them here, so that a worker, the provisioning step, the permissions and
// ksefctl agree; it imports nothing.
package names

import "strings"

// Workers' names.
const (
	Sender     = "sender"
	Poller     = "poller"
	Downloader = "downloader"
	Visualizer = "visualizer"
	// SenderBatch is the sender's batch assembler: a second durable consumer run in the
	// sender's process (not a worker of its own).
	SenderBatch = "sender-batch"
)

// Workers lists every worker.
func Workers() []string { return []string{Sender, Poller, Downloader, Visualizer} }

// Stream returns the name of the pipeline's stream: "KSEF" without a prefix, otherwise "KSEF_"
// and the prefix in upper case with characters other than letters and digits replaced by "_"
// ("acme.prod" -> "KSEF_ACME_PROD").
func Stream(prefix string) string {
	if prefix == "" {
		return "KSEF"
	}
	b := []byte("KSEF_" + strings.ToUpper(prefix))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Bucket is a KV bucket of the pipeline, named after its stream (KV) so that prefixed tenants
// stay apart.
type Bucket string

const (
	// State holds each submitted invoice's state (sender, poller).
	State Bucket = "STATE"
	// Limits holds the request limiter's windows (every worker calling KSeF).
	Limits Bucket = "LIMITS"
	// Marks holds the downloader's high-water marks.
	Marks Bucket = "MARKS"
	// Sessions is the ledger of the sender's open KSeF sessions.
	Sessions Bucket = "SESSIONS"
)

// Buckets lists every KV bucket of the pipeline (the workers' failure counts aside).
func Buckets() []Bucket { return []Bucket{State, Limits, Marks, Sessions} }

// KV names bucket b of the stream with subject prefix prefix: <stream>_<b>.
func KV(prefix string, b Bucket) string { return Stream(prefix) + "_" + string(b) }

// Failures names the KV bucket holding the failure counts of the stream's consumers.
func Failures(prefix string) string { return Stream(prefix) + "_failures" }
