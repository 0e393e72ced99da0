#!/usr/bin/env node
// An ERP publishing one FA(3) invoice to ksef-pipeline and waiting for its KSeF number, with
// nothing but a NATS client and a msgpack library: the event contract (docs/events.md) is all it
// needs, none of the pipeline's Go types.
//
//   node publish.mjs INVOICE.xml [--id ID] [--nip NIP] [--visualize] [--timeout SECONDS]
//
// KSEF_NATS_URL (default nats://127.0.0.1:4222) and KSEF_SUBJECT_PREFIX say where the pipeline
// is. Exit code: 0 accepted (the KSeF number is printed), 1 rejected, 2 usage or connection
// errors, 3 no outcome within the timeout.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import { argv, env, exit } from "node:process";

import { decode, encode } from "@msgpack/msgpack";
import { connect, DeliverPolicy, headers } from "nats";

function usage(message) {
  console.error(`publish: ${message}`);
  console.error("usage: node publish.mjs INVOICE.xml [--id ID] [--nip NIP] [--visualize] [--timeout SECONDS]");
  exit(2);
}

function parseArgs(args) {
  const opts = { timeout: 60, visualize: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => (i + 1 < args.length ? args[++i] : usage(`${a} needs a value`));
    if (a === "--id") opts.id = value();
    else if (a === "--nip") opts.nip = value();
    else if (a === "--timeout") opts.timeout = Number(value());
    else if (a === "--visualize") opts.visualize = true;
    else if (a === "--help" || a === "-h") usage("publishes an invoice.submitted and waits for its outcome");
    else if (a.startsWith("-")) usage(`unknown flag ${a}`);
    else if (opts.file === undefined) opts.file = a;
    else usage(`unexpected argument ${a}`);
  }
  if (opts.file === undefined) usage("name the invoice XML file");
  if (!(opts.timeout > 0)) usage("--timeout wants a positive number of seconds");
  return opts;
}

// The pipeline's stream and subjects under an optional prefix (docs/events.md, "Subjects").
function streamName(prefix) {
  return prefix ? "KSEF_" + prefix.toUpperCase().replace(/[^A-Z0-9]/g, "_") : "KSEF";
}
function subject(prefix, bare) {
  return prefix ? `${prefix}.${bare}` : bare;
}

// Times are RFC 3339 strings in UTC with nine fractional digits.
function rfc3339(date) {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}

// A few fields of the FA(3) document. Good enough for the Ministry's documents, which use a
// default namespace; a real ERP knows these values already or uses an XML parser.
function element(xml, pattern) {
  const m = xml.match(pattern);
  return m ? m[1].trim() : undefined;
}

async function main() {
  const opts = parseArgs(argv.slice(2));
  let xml;
  try {
    xml = await readFile(opts.file);
  } catch (err) {
    usage(err.message);
  }
  const text = xml.toString("utf8");
  if (!/<Faktura[\s>]/.test(text)) usage(`${opts.file} is not an FA(3) invoice (no Faktura element)`);
  const nip = opts.nip ?? element(text, /<Podmiot1>[\s\S]*?<NIP>([^<]+)<\/NIP>/);
  if (!/^\d{10}$/.test(nip ?? "")) usage(`no 10-digit seller NIP in ${opts.file}; give --nip`);
  const invoiceId = opts.id ?? element(text, /<P_2>([^<]+)<\/P_2>/) ?? basename(opts.file, extname(opts.file));

  // The event id is deterministic, like the pipeline's own (docs/events.md, "Event ids"):
  // a retried publish of the same invoice is dropped by JetStream as a duplicate.
  const digest = createHash("sha256").update("inline\0").update(xml).digest("hex").slice(0, 16);
  const eventId = `invoice.submitted:${nip}:${invoiceId}:${digest}`;
  const event = {
    v: 1,
    type: "invoice.submitted",
    event_id: eventId,
    correlation_id: eventId,
    occurred_at: rfc3339(new Date()),
    invoice_id: invoiceId,
    context_nip: nip,
    inline_xml: new Uint8Array(xml.buffer, xml.byteOffset, xml.byteLength), // msgpack bin
    offline: false,
    visualize: opts.visualize,
  };

  const prefix = env.KSEF_SUBJECT_PREFIX ?? "";
  const stream = streamName(prefix);
  let nc;
  try {
    nc = await connect({ servers: (env.KSEF_NATS_URL ?? "nats://127.0.0.1:4222").split(","), timeout: 5000, name: "erp-publisher-example" });
  } catch (err) {
    console.error(`publish: cannot connect to NATS: ${err.message}`);
    exit(2);
  }
  const js = nc.jetstream();
  const h = headers();
  h.set("Ksef-Correlation-Id", eventId);
  const ack = await js.publish(subject(prefix, "invoice.submitted"), encode(event), {
    msgID: eventId,
    headers: h,
    expect: { streamName: stream },
  });
  console.log(`published ${invoiceId} of ${nip} as stream message ${ack.seq}${ack.duplicate ? " (a duplicate of an earlier publish)" : ""}`);

  // Read the outcome from the stream, starting at our own message, with an ordered consumer
  // (ephemeral: it disturbs none of the pipeline's workers).
  const consumer = await js.consumers.get(stream, {
    filterSubjects: [subject(prefix, "invoice.accepted"), subject(prefix, "invoice.rejected")],
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: ack.seq,
  });
  const messages = await consumer.consume();
  let code = 3;
  const timer = setTimeout(() => messages.stop(), opts.timeout * 1000);
  for await (const m of messages) {
    const ev = decode(m.data); // a plain object with the contract's snake_case keys
    if (ev.invoice_id !== invoiceId || ev.context_nip !== nip) continue;
    if (ev.type === "invoice.accepted") {
      console.log(`accepted ${invoiceId}: ksef_number ${ev.ksef_number} (acquired ${ev.acquisition_date})`);
      code = 0;
    } else {
      const details = Array.isArray(ev.details) && ev.details.length ? ` (${ev.details.join("; ")})` : "";
      console.log(`rejected ${invoiceId}: code ${ev.code} at ${ev.stage}: ${ev.description}${details}`);
      code = 1;
    }
    break;
  }
  clearTimeout(timer);
  if (code === 3) console.error(`publish: no outcome for ${invoiceId} within ${opts.timeout}s`);
  await nc.close();
  exit(code);
}

main().catch((err) => {
  console.error(`publish: ${err.message}`);
  exit(2);
});
