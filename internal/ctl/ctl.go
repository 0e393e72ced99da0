package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Exit codes of ksefctl.
const (
	ExitOK      = 0
	ExitFailed  = 1 // an invoice rejected or dead-lettered, a query failed, unknown id, missing object
	ExitUsage   = 2 // bad flags or files, configuration, NATS or storage unreachable
	ExitTimeout = 3 // --wait gave up before every outcome was known
)

// Error is an error with the exit code it ends ksefctl with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode maps Run's error to the process's exit code: an *Error's code, 0 for nil, 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailed
}

func usagef(format string, args ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

func failedf(format string, args ...any) error {
	return &Error{Code: ExitFailed, Err: fmt.Errorf(format, args...)}
}

// Env is what Run needs from its process.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Interactive: Stderr is a terminal, so progress may redraw one line.
	Interactive bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// command is one subcommand.
type command struct {
	name, args, short, long string
	run                     func(ctx context.Context, o *options, args []string) error
}

func commands() []command {
	return []command{
		{"submit", "[flags] FILE|DIR...", "send invoices (FA(3) XML or generate JSON) to KSeF", submitHelp, runSubmit},
		{"query", "--nip NIP --subject S --from T [--to T] [--wait]", "download a context's invoices from KSeF", queryHelp, runQuery},
		{"sync", "--nip NIP --subject S [--wait] | --status", "incremental download from the last high-water mark", syncHelp, runSync},
		{"status", "[flags] ID", "the whole history of an invoice, query, KSeF number or session", statusHelp, runStatus},
		{"get", "ID --xml|--upo|--pdf|--html -o FILE", "copy an invoice's artifact from storage", getHelp, runGet},
		{"events", "[--follow] [--subject S]... [--since T]", "the audit view of the event stream", eventsHelp, runEvents},
		{"dlq", "list | show SEQ | replay SEQ...|--all", "dead letters: list, inspect, replay", dlqHelp, runDLQ},
		{"streams", "[--all]", "the stream, the workers' consumers, pending work, KV buckets", streamsHelp, runStreams},
		{"nats", "provision | permissions", "create the stream, KV buckets and consumers; print the NATS permissions", natsHelp, runNATS},
		{"tls", "dev-certs --dir DIR --hosts H1,H2", "make a development CA and NATS server certificate", tlsHelp, runTLS},
	}
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// Run is the whole of ksefctl: args[0] is the program name. The error's exit code is
// ExitCode(err).
func Run(ctx context.Context, args []string, env Env) error {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	o := newOptions(env)
	// Global flags: the connection flags, before the command.
	fs := o.flagSet("ksefctl", nil)
	fs.Usage = func() {}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			o.usage(env.Stdout)
			return nil
		}
		return usagef("run \"ksefctl --help\" for usage")
	}
	rest := fs.Args()
	if len(rest) == 0 {
		o.usage(env.Stderr)
		return usagef("name a command")
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			if c, ok := findCommand(rest[1]); ok {
				o.commandUsage(env.Stdout, c, o.flagSet(c.name, nil))
				return nil
			}
			return usagef("unknown command %q (ksefctl help lists them)", rest[1])
		}
		o.usage(env.Stdout)
		return nil
	}
	c, ok := findCommand(name)
	if !ok {
		return usagef("unknown command %q (ksefctl help lists them)", name)
	}
	return c.run(ctx, o, rest[1:])
}

func (o *options) usage(w io.Writer) {
	fmt.Fprint(w, `ksefctl: the command line of ksef-pipeline (KSeF through NATS JetStream)

Usage: ksefctl [connection flags] COMMAND [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, `
"ksefctl help COMMAND" or "ksefctl COMMAND --help" describes a command.

Connection flags (also after the command); each names the setting it overrides.
Settings come from flags, then the environment, then the config file:
`)
	printFlags(w, o.flagSet("", nil), nil)
	fmt.Fprint(w, `
Exit codes: 0 success; 1 rejected, dead-lettered, failed, unknown id or missing object;
2 usage, bad files, configuration, NATS or storage unreachable; 3 --wait timed out.
Manual: docs/ksefctl.md.
`)
}

func (o *options) commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: ksefctl %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	own := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if !o.isCommon(f.Name) {
			own[f.Name] = true
		}
	})
	if len(own) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, fs, own)
	}
	fmt.Fprint(w, "\nConnection flags (--nats-url, --config, ...): see ksefctl --help.\n")
}

// printFlags lists fs's flags (those in only, when it is not nil) with their usage.
func printFlags(w io.Writer, fs *flag.FlagSet, only map[string]bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if only != nil && !only[f.Name] {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "0s" && d != "[]" {
			fmt.Fprintf(w, " (default %s)", d)
		}
		fmt.Fprintln(w)
	})
}

// parse parses a command's flags, which may come before, between and after its arguments
// ("--" ends the flags), and returns the arguments. --help prints the command's usage and
// returns flag.ErrHelp.
func (o *options) parse(c command, fs *flag.FlagSet, args []string) ([]string, error) {
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				o.commandUsage(o.env.Stdout, c, fs)
				return nil, err
			}
			return nil, usagef("run \"ksefctl %s --help\" for usage", c.name)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// helpOK turns --help into success.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
