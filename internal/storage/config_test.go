package storage

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestS3ConfigFromEnv(t *testing.T) {
	c, err := S3ConfigFromEnv(env(map[string]string{
		"KSEF_S3_ENDPOINT": "minio:9000", "KSEF_S3_ACCESS_KEY": "ak", "KSEF_S3_SECRET_KEY": "sk",
		"KSEF_S3_REGION": "eu-central-1", "KSEF_S3_TLS": "true", "KSEF_S3_CA_FILE": "ca.pem", "KSEF_S3_PART_SIZE": "16MiB",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := S3Config{Endpoint: "minio:9000", AccessKey: "ak", SecretKey: "sk", Region: "eu-central-1",
		UseTLS: true, CAFile: "ca.pem", PartSize: 16 << 20}
	if c != want {
		t.Fatalf("got %s", c)
	}
	if s := c.String() + c.GoString(); strings.Contains(s, "sk") && !strings.Contains(s, "REDACTED") {
		t.Fatalf("secret in %s", s)
	}
	bad := []map[string]string{
		{},
		{"KSEF_S3_ENDPOINT": "http://minio:9000", "KSEF_S3_ACCESS_KEY": "a", "KSEF_S3_SECRET_KEY": "s"},
		{"KSEF_S3_ENDPOINT": "m:9000", "KSEF_S3_ACCESS_KEY": "a"},
		{"KSEF_S3_ENDPOINT": "m:9000", "KSEF_S3_ACCESS_KEY": "a", "KSEF_S3_SECRET_KEY": "s", "KSEF_S3_TLS": "yes please"},
		{"KSEF_S3_ENDPOINT": "m:9000", "KSEF_S3_ACCESS_KEY": "a", "KSEF_S3_SECRET_KEY": "s", "KSEF_S3_PART_SIZE": "1MiB"},
		{"KSEF_S3_ENDPOINT": "m:9000", "KSEF_S3_ACCESS_KEY": "a", "KSEF_S3_SECRET_KEY": "s", "KSEF_S3_PART_SIZE": "big"},
		{"KSEF_S3_ENDPOINT": "m:9000", "KSEF_S3_ACCESS_KEY": "a", "KSEF_S3_SECRET_KEY": "s", "KSEF_S3_CA_FILE": "ca.pem"},
	}
	for _, m := range bad {
		if c, err := S3ConfigFromEnv(env(m)); err == nil {
			t.Errorf("%v accepted: %s", m, c)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{"KSEF_STORAGE_DIR": "/var/lib/ksef", "KSEF_S3_BUCKET_UPO": "acme-upo"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend != "local" || c.Dir != "/var/lib/ksef" || c.Buckets.UPO != "acme-upo" || c.Buckets.Invoices != "ksef-invoices" {
		t.Fatalf("got %+v", c)
	}
	c, err = ConfigFromEnv(env(map[string]string{"KSEF_S3_ENDPOINT": "m:9000", "KSEF_S3_ACCESS_KEY": "a", "KSEF_S3_SECRET_KEY": "s"}))
	if err != nil || c.Backend != "s3" || c.S3.PartSize != DefaultPartSize {
		t.Fatalf("got %+v, %v", c, err)
	}
	// Local without a directory is a valid setting (a single-process run picks one), but the
	// store cannot be opened without it.
	c, err = ConfigFromEnv(env(map[string]string{}))
	if err != nil || c.Backend != "local" {
		t.Fatalf("got %+v, %v", c, err)
	}
	if _, err := Open(c); err == nil {
		t.Error("a local store without a directory opened")
	}
	for _, m := range []map[string]string{
		{"KSEF_STORAGE": "ftp"}, // unknown backend
		{"KSEF_STORAGE_DIR": "/d", "KSEF_S3_BUCKET_INVOICES": "Bad_Name"},
	} {
		if _, err := ConfigFromEnv(env(m)); err == nil {
			t.Errorf("%v accepted", m)
		}
	}
}

func TestLayout(t *testing.T) {
	l := Layout{Buckets: DefaultBuckets()}
	d := time.Date(2026, 3, 14, 23, 30, 0, 0, time.FixedZone("CET", -3600)) // 2026-03-15 in UTC
	tests := []struct {
		got  Location
		want Location
	}{
		{l.InvoiceXML("5265877635", d, "FV/2026/03/1"), Location{"ksef-invoices", "5265877635/sent/2026/03/15/FV%2F2026%2F03%2F1.xml"}},
		{l.InvoiceXML("5265877635", d, ".."), Location{"ksef-invoices", "5265877635/sent/2026/03/15/%2E..xml"}},
		{l.Downloaded("5265877635", "5265877635-20260314-0100001AF629-AF"), Location{"ksef-invoices", "5265877635/downloaded/5265877635-20260314-0100001AF629-AF.xml"}},
		{l.UPO("5265877635", d, "20260314-SO-1"), Location{"ksef-upo", "5265877635/2026/03/15/20260314-SO-1.xml"}},
		{l.QueryPart("5265877635", "q 1", 3), Location{"ksef-query-parts", "5265877635/q%201/part-00003.zip"}},
		{l.Visualization("5265877635", "FV/1", "pdf", "pl_en"), Location{"ksef-visualizations", "5265877635/FV%2F1.pl_en.pdf"}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %v, want %v", tt.got, tt.want)
		}
		if err := checkObject(tt.got.Bucket, tt.got.Key); err != nil {
			t.Errorf("layout produced an invalid key: %v", err)
		}
	}
	for _, id := range []string{".", "..", "../../etc/passwd", "a/b", "", "zażółć"} {
		if err := checkKey("x/" + Segment(id) + "/y"); err != nil && id != "" {
			t.Errorf("Segment(%q) = %q: %v", id, Segment(id), err)
		}
	}
}

func TestMetaEscaping(t *testing.T) {
	for _, v := range []string{"", "plain", "100%", "=?utf-8?q?x?=", "ŁÓDŹ", "tab\tnew\nline", "%41", "trailing%"} {
		e := escapeMeta(v)
		for i := 0; i < len(e); i++ {
			if e[i] < 0x20 || e[i] > 0x7e || e[i] == '?' {
				t.Errorf("escapeMeta(%q) = %q has byte %q", v, e, e[i])
			}
		}
		if got := unescapeMeta(e); got != v {
			t.Errorf("round trip of %q: %q via %q", v, got, e)
		}
	}
}
