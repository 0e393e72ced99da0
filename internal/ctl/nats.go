package ctl

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsperm"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
)

const natsHelp = `
nats provision: creates or updates, as a user allowed to (the admin user of
deploy/nats/permissions.conf), the pipeline's stream, its KV buckets, every worker's durable
consumer (the sender's batch consumer unless KSEF_BATCH=false) and the ERP systems' mirror of the
stream (KSEF-ERP: the erp user manages consumers there only), with the settings the workers
read (KSEF_SUBJECT_PREFIX, KSEF_ACK_WAIT, KSEF_BATCH_*...). Workers started with
KSEF_NATS_PROVISIONED=true then only look them up, which their NATS users are limited to.
Idempotent: run it before the workers start and after changing those settings.

nats permissions: prints the nats-server users and permissions for the current
KSEF_SUBJECT_PREFIX (deploy/nats/permissions.conf is the output for no prefix).`

func runNATS(ctx context.Context, o *options, args []string) error {
	c, _ := findCommand("nats")
	fs := o.flagSet(c.name, nil)
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) != 1 {
		return usagef("nats: want provision or permissions")
	}
	cfg, err := o.natsConfig()
	if err != nil {
		return err
	}
	switch rest[0] {
	case "permissions":
		fmt.Fprint(o.env.Stdout, natsperm.Render(cfg.SubjectPrefix))
		return nil
	case "provision":
		s, err := pipeline.SettingsFromEnv(o.getenv, os.ReadFile)
		if err != nil {
			return usagef("settings: %w", err)
		}
		s.NATS = cfg
		// Connecting, then a few JetStream API calls.
		ctx, cancel := context.WithTimeout(ctx, o.connectTimeout+time.Minute)
		defer cancel()
		made, err := pipeline.Provision(o.logCtx(ctx), s)
		for _, m := range made {
			fmt.Fprintln(o.env.Stdout, "ensured", m)
		}
		if err != nil {
			return failedf("provisioning: %w", err)
		}
		return nil
	}
	return usagef("nats: unknown subcommand %q (want provision or permissions)", rest[0])
}
