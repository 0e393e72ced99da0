// Package natsperm is the one description of who may do what on the pipeline's NATS server:
// one user per worker, the ERP systems' user, and an administrator who provisions the stream,
// KV buckets and consumers. Render writes it as nats-server configuration; the committed
// deploy/nats/permissions.conf is its output (go generate ./internal/natsperm), which the compose
// file and the Kubernetes manifests mount and internal/reliability's TestNATSPermissions runs.
//
// Workers get INFO on the stream, the KV buckets and their own consumers, never CREATE, UPDATE
// or DELETE: they start with KSEF_NATS_PROVISIONED and only look them up (natsx.BindOnly). Each
// user's replies come on its own inbox prefix, _INBOX_<user> (natsx's default for a user).
//
// The ERP systems' user has no consumer rights on the pipeline's stream at all: it reads the
// mirror natsx.ERPStreamName, which provisioning makes, and manages consumers only there.
package natsperm

//go:generate go run ./gen ../../deploy/nats/permissions.conf ../../deploy/k8s/base/nats/permissions.conf

import (
	"fmt"
	"strings"

	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Users of the configuration: the workers' users are named after the workers.
const (
	Admin      = "admin"
	ERP        = "erp"
	Sender     = names.Sender
	Poller     = names.Poller
	Downloader = names.Downloader
	Visualizer = names.Visualizer
	// SenderBatch is the sender's second durable consumer (its batch assembler), used by the
	// sender user.
	SenderBatch = names.SenderBatch
)

// User is one user's permissions. Admin has none: everything is allowed.
type User struct {
	Name     string
	Comment  string
	Publish  []string
	Sub      []string
	Password string // the variable the server reads it from, "$KSEF_NATS_<USER>_PASSWORD"
}

// workerSpec is what one worker does besides the common part.
type workerSpec struct {
	name, comment string
	events        []string // event subjects it publishes (bare)
	consumers     []string // its durable consumers
	kv            []string // KV buckets whose data it reads and writes
	extra         []string // anything else (full subjects)
}

// Inbox is the inbox prefix of a user (natsx.Config's default for a user).
func Inbox(user string) string { return "_INBOX_" + user }

// Users are the users for subject prefix prefix (KSEF_SUBJECT_PREFIX).
func Users(prefix string) []User {
	subj := events.Subjects{Prefix: prefix}
	stream := names.Stream(prefix)
	kvName := func(b names.Bucket) string { return names.KV(prefix, b) }
	failures := names.Failures(prefix)
	var allKV []string
	for _, b := range names.Buckets() {
		allKV = append(allKV, kvName(b))
	}
	allKV = append(allKV, failures)
	s := func(bare ...string) []string {
		out := make([]string, len(bare))
		for i, b := range bare {
			out[i] = subj.Subject(b)
		}
		return out
	}
	workers := []workerSpec{
		{name: Sender, comment: "sends invoices: the send, a rejection, a closed session, the batch queue, its dead letters",
			events:    s(events.TypeInvoiceSent, events.TypeInvoiceRejected, events.TypeSessionClosed, events.TypeBatchQueued+".>", "dlq."+events.TypeInvoiceSubmitted, "dlq."+events.TypeBatchQueued+".>"),
			consumers: []string{Sender, SenderBatch},
			kv:        []string{kvName(names.State), kvName(names.Limits), kvName(names.Sessions)},
			// The ledger of open sessions is listed with an ordered consumer of its bucket, which
			// has no durable consumer to harm.
			extra: []string{"$JS.API.CONSUMER.CREATE.KV_" + kvName(names.Sessions) + ".>", "$JS.API.CONSUMER.DELETE.KV_" + kvName(names.Sessions) + ".>", "$JS.FC.KV_" + kvName(names.Sessions) + ".>"}},
		{name: Poller, comment: "outcomes, stored UPOs, resubmissions of invoices KSeF cancelled, invoices put back after a failed batch package, dead letters",
			events:    s(events.TypeInvoiceAccepted, events.TypeInvoiceRejected, events.TypeSessionUpoStored, events.TypeInvoiceSubmitted, events.TypeBatchQueued+".>", "dlq."+events.TypeInvoiceSent, "dlq."+events.TypeSessionClosed),
			consumers: []string{Poller},
			kv:        []string{kvName(names.State), kvName(names.Limits)}},
		{name: Downloader, comment: "downloaded invoices, completed queries, dead letters; query marks",
			events:    s(events.TypeInvoiceDownloaded, events.TypeQueryCompleted, "dlq."+events.TypeQueryRequested),
			consumers: []string{Downloader},
			kv:        []string{kvName(names.Marks), kvName(names.Limits)}},
		{name: Visualizer, comment: "renderings and dead letters; no KSeF calls, no shared state",
			events:    s(events.TypeInvoiceVisualized, "dlq."+events.TypeInvoiceAccepted, "dlq."+events.TypeInvoiceDownloaded, "dlq."+events.TypeVisualizeRequested),
			consumers: []string{Visualizer}},
	}
	users := []User{{Name: Admin, Comment: "operations: provisions the stream, its ERP mirror, KV buckets and consumers (ksefctl nats provision), replays dead letters, audits"}}
	// Consumer names are one subject token, so rights on "consumers under its own prefix" cannot
	// be a subject wildcard. The erp user has none on the pipeline's stream; it reads the mirror
	// natsx.ERPStreamName (KSEF_NATS_READ_STREAM), where every consumer is an ERP system's.
	erpStream := natsx.ERPStreamName(prefix)
	erp := User{Name: ERP, Comment: "ERP systems: submit invoices, queries and renderings; read every event from the mirror " + erpStream + ", on which alone they manage consumers",
		Publish: append(s(events.TypeInvoiceSubmitted, events.TypeQueryRequested, events.TypeVisualizeRequested),
			"$JS.API.INFO", "$JS.API.STREAM.INFO."+stream, "$JS.API.STREAM.INFO."+erpStream, "$JS.API.STREAM.MSG.GET."+erpStream,
			"$JS.API.CONSUMER.CREATE."+erpStream+".>", "$JS.API.CONSUMER.DURABLE.CREATE."+erpStream+".*",
			"$JS.API.CONSUMER.INFO."+erpStream+".*", "$JS.API.CONSUMER.DELETE."+erpStream+".*",
			"$JS.API.CONSUMER.MSG.NEXT."+erpStream+".*", "$JS.API.CONSUMER.NAMES."+erpStream, "$JS.API.CONSUMER.LIST."+erpStream,
			"$JS.ACK."+erpStream+".>", "$JS.FC."+erpStream+".>"),
		Sub: []string{Inbox(ERP) + ".>"}}
	users = append(users, erp)
	for _, w := range workers {
		u := User{Name: w.name, Comment: w.comment, Sub: []string{Inbox(w.name) + ".>"}}
		u.Publish = append(u.Publish, w.events...)
		u.Publish = append(u.Publish, "$JS.API.INFO", "$JS.API.STREAM.INFO."+stream)
		for _, b := range allKV {
			u.Publish = append(u.Publish, "$JS.API.STREAM.INFO.KV_"+b)
		}
		for _, c := range w.consumers {
			u.Publish = append(u.Publish, "$JS.API.CONSUMER.INFO."+stream+"."+c, "$JS.API.CONSUMER.MSG.NEXT."+stream+"."+c, "$JS.ACK."+stream+"."+c+".>",
				"$KV."+failures+"."+c+".>", "$JS.API.DIRECT.GET.KV_"+failures+".$KV."+failures+"."+c+".>")
		}
		for _, b := range w.kv {
			// Direct gets, and gets through the leader for the buckets read that way
			// (natsx.KVLeaderReads); both only read.
			u.Publish = append(u.Publish, "$KV."+b+".>", "$JS.API.DIRECT.GET.KV_"+b+".>", "$JS.API.STREAM.MSG.GET.KV_"+b)
		}
		u.Publish = append(u.Publish, w.extra...)
		users = append(users, u)
	}
	for i := range users {
		users[i].Password = "$KSEF_NATS_" + strings.ToUpper(strings.ReplaceAll(users[i].Name, "-", "_")) + "_PASSWORD"
	}
	return users
}

// Render writes the users as nats-server configuration: one account with JetStream, a user
// with a password (from the server's environment) and permissions each.
func Render(prefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# GENERATED by internal/natsperm (go generate ./internal/natsperm); do not edit.
#
# Least-privilege NATS users for ksef-pipeline, subject prefix %q (stream %s). Passwords come
# from the server's environment (KSEF_NATS_<USER>_PASSWORD); each worker connects as its own user
# (KSEF_NATS_USER / KSEF_NATS_PASSWORD) with KSEF_NATS_PROVISIONED=true, after the admin user ran
# "ksefctl nats provision". Include it in the server's configuration (include ./permissions.conf).
# Tested by internal/reliability (TestNATSPermissions) against a real server.

accounts {
  KSEF {
    jetstream: enabled
    users: [
`, prefix, natsx.StreamName(prefix))
	for _, u := range Users(prefix) {
		fmt.Fprintf(&b, "      # %s\n", u.Comment)
		if u.Publish == nil && u.Sub == nil {
			fmt.Fprintf(&b, "      { user: %s, password: %s }\n\n", u.Name, u.Password)
			continue
		}
		fmt.Fprintf(&b, "      {\n        user: %s, password: %s\n        permissions: {\n", u.Name, u.Password)
		fmt.Fprintf(&b, "          publish: {\n            allow: %s\n", list(u.Publish, 14))
		fmt.Fprintf(&b, "          }\n          subscribe: { allow: %s }\n        }\n      }\n\n", list(u.Sub, 0))
	}
	b.WriteString("    ]\n  }\n}\n")
	return b.String()
}

// list writes subjects as a quoted list, one a line when indent > 0.
func list(subjects []string, indent int) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = `"` + s + `"`
	}
	if indent == 0 {
		return "[" + strings.Join(q, ", ") + "]"
	}
	pad := strings.Repeat(" ", indent)
	return "[\n" + pad + strings.Join(q, ",\n"+pad) + "\n" + strings.Repeat(" ", indent-2) + "]"
}
