package ctl

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// options are the settings every command shares.
type options struct {
	env Env
	// set holds settings given as flags, by their environment name.
	set map[string]string
	// file holds the config file's settings; nil until loaded.
	file       map[string]string
	configPath string

	connectTimeout time.Duration
	verbose        bool
}

func newOptions(env Env) *options {
	return &options{env: env, set: map[string]string{}, connectTimeout: 5 * time.Second}
}

// settingFlag is a flag that sets a setting by its environment name, so that registering it in
// several flag sets (before and after the command) never resets it.
type settingFlag struct {
	o   *options
	key string
}

func (f settingFlag) String() string {
	if f.o == nil {
		return ""
	}
	return f.o.set[f.key]
}

func (f settingFlag) Set(v string) error { f.o.set[f.key] = v; return nil }

// boolSettingFlag is a settingFlag without a value ("--s3-tls").
type boolSettingFlag struct{ settingFlag }

func (boolSettingFlag) IsBoolFlag() bool { return true }

func (f boolSettingFlag) Set(v string) error {
	if _, err := strconv.ParseBool(v); err != nil {
		return err
	}
	f.o.set[f.key] = v
	return nil
}

type stringFlag struct{ p *string }

func (f stringFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}
func (f stringFlag) Set(v string) error { *f.p = v; return nil }

type durationFlag struct{ p *time.Duration }

func (f durationFlag) String() string {
	if f.p == nil {
		return ""
	}
	return f.p.String()
}

func (f durationFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration such as 5s or 2m, got %q", v)
	}
	*f.p = d
	return nil
}

type boolFlag struct{ p *bool }

func (f boolFlag) String() string {
	if f.p == nil {
		return "false"
	}
	return strconv.FormatBool(*f.p)
}
func (f boolFlag) IsBoolFlag() bool { return true }
func (f boolFlag) Set(v string) error {
	b, err := strconv.ParseBool(v)
	*f.p = b
	return err
}

// commonFlags are the connection flags: name, setting (environment name), usage. A setting ""
// marks a flag of ksefctl itself.
var commonFlags = []struct{ name, key, usage string }{
	{"config", "", "config `file` of KEY=value lines (default $XDG_CONFIG_HOME/ksefctl/config)"},
	{"nats-url", "KSEF_NATS_URL", "NATS server `URLs`, comma-separated (KSEF_NATS_URL; default nats://127.0.0.1:4222)"},
	{"nats-creds", "KSEF_NATS_CREDS", "NATS credentials `file` (KSEF_NATS_CREDS)"},
	{"nats-nkey", "KSEF_NATS_NKEY", "NATS nkey seed `file` (KSEF_NATS_NKEY)"},
	{"nats-user", "KSEF_NATS_USER", "NATS `user`; the password comes from KSEF_NATS_PASSWORD"},
	{"nats-tls-ca", "KSEF_NATS_TLS_CA", "CA `file` verifying the NATS server (KSEF_NATS_TLS_CA)"},
	{"nats-tls-cert", "KSEF_NATS_TLS_CERT", "client certificate `file` (KSEF_NATS_TLS_CERT)"},
	{"nats-tls-key", "KSEF_NATS_TLS_KEY", "client key `file` (KSEF_NATS_TLS_KEY)"},
	{"prefix", "KSEF_SUBJECT_PREFIX", "subject `prefix` of the pipeline (KSEF_SUBJECT_PREFIX)"},
	{"storage", "KSEF_STORAGE", "object storage `kind`: s3 or local (KSEF_STORAGE)"},
	{"storage-dir", "KSEF_STORAGE_DIR", "`directory` of the local object store (KSEF_STORAGE_DIR)"},
	{"s3-endpoint", "KSEF_S3_ENDPOINT", "S3 `host:port` (KSEF_S3_ENDPOINT); keys from KSEF_S3_ACCESS_KEY, KSEF_S3_SECRET_KEY"},
	{"s3-tls", "KSEF_S3_TLS", "use HTTPS for S3 (KSEF_S3_TLS)"},
	{"s3-ca-file", "KSEF_S3_CA_FILE", "CA `file` verifying the S3 server (KSEF_S3_CA_FILE)"},
	{"connect-timeout", "", "give up connecting to NATS after this `duration`"},
	{"verbose", "", "log connection events to stderr"},
}

func (o *options) isCommon(name string) bool {
	for _, c := range commonFlags {
		if c.name == name {
			return true
		}
	}
	return false
}

// flagSet returns a flag set with the connection flags; own registers the command's flags
// first, so they lead its help.
func (o *options) flagSet(name string, own func(*flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(o.env.Stderr)
	if own != nil {
		own(fs)
	}
	for _, c := range commonFlags {
		switch {
		case c.name == "config":
			fs.Var(stringFlag{&o.configPath}, c.name, c.usage)
		case c.name == "connect-timeout":
			fs.Var(durationFlag{&o.connectTimeout}, c.name, c.usage)
		case c.name == "verbose":
			fs.Var(boolFlag{&o.verbose}, c.name, c.usage)
		case c.name == "s3-tls":
			fs.Var(boolSettingFlag{settingFlag{o, c.key}}, c.name, c.usage)
		default:
			fs.Var(settingFlag{o, c.key}, c.name, c.usage)
		}
	}
	if f := fs.Lookup("connect-timeout"); f != nil {
		f.DefValue = "5s"
	}
	return fs
}

// getenv returns a setting: flag, then environment, then config file.
func (o *options) getenv(key string) string {
	if v, ok := o.set[key]; ok {
		return v
	}
	if v := o.env.Getenv(key); v != "" {
		return v
	}
	return o.file[key]
}

// loadConfig reads the config file: --config (which must exist), else
// $XDG_CONFIG_HOME/ksefctl/config or ~/.config/ksefctl/config when present.
func (o *options) loadConfig() error {
	if o.file != nil {
		return nil
	}
	o.file = map[string]string{}
	path, explicit := o.configPath, o.configPath != ""
	if !explicit {
		dir := o.env.Getenv("XDG_CONFIG_HOME")
		if dir == "" {
			home := o.env.Getenv("HOME")
			if home == "" {
				return nil
			}
			dir = filepath.Join(home, ".config")
		}
		path = filepath.Join(dir, "ksefctl", "config")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return usagef("config file: %w", err)
	}
	m, err := parseConfig(data)
	if err != nil {
		return usagef("config file %s: %w", path, err)
	}
	o.file = m
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && hasSecret(m) {
		fmt.Fprintf(o.env.Stderr, "ksefctl: warning: %s holds secrets and is readable by others (chmod 600 it)\n", path)
	}
	return nil
}

// parseConfig reads KEY=value lines: blank lines and lines starting with # are skipped, an
// "export " before the key and quotes around the value are allowed.
func parseConfig(data []byte) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !validKey(k) {
			return nil, fmt.Errorf("line %d: want KEY=value", n)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		m[k] = v
	}
	return m, sc.Err()
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}

func hasSecret(m map[string]string) bool {
	for _, k := range []string{"KSEF_NATS_PASSWORD", "KSEF_NATS_TOKEN", "KSEF_S3_SECRET_KEY"} {
		if m[k] != "" {
			return true
		}
	}
	return false
}

// outputFlag registers --output (table or json).
func outputFlag(fs *flag.FlagSet, p *string) {
	*p = "table"
	fs.Var(outputValue{p}, "output", "output `format`: table or json")
}

type outputValue struct{ p *string }

func (v outputValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v outputValue) Set(s string) error {
	if s != "table" && s != "json" {
		return fmt.Errorf("want table or json, got %q", s)
	}
	*v.p = s
	return nil
}
