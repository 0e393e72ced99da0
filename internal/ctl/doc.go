// Package ctl is ksefctl, the pipeline's command line for integrators, operators and auditors:
// submitting invoices and queries, following them to their outcomes, reading an invoice's whole
// history and its artifacts, the audit stream, dead letters and the workers' consumers.
// cmd/ksefctl is its thin main; docs/ksefctl.md is the manual.
//
// Settings have the workers' names (KSEF_NATS_URL, KSEF_STORAGE, KSEF_S3_*, KSEF_SUBJECT_PREFIX,
// ...) and come from flags, then the environment, then a config file of KEY=value lines
// ($XDG_CONFIG_HOME/ksefctl/config, or --config).
//
// Exit codes: 0 success; 1 a negative outcome (an invoice rejected or dead-lettered, a query
// failed, an unknown id, a missing object); 2 usage, bad input files, configuration, NATS or
// storage unreachable; 3 --wait timed out before every outcome was known.
package ctl
