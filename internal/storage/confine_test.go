package storage

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckInvoiceRef(t *testing.T) {
	l := Layout{Buckets: DefaultBuckets()}
	const nip, other = "5261040828", "7740001454"
	inv := l.Buckets.Invoices
	cases := []struct {
		name        string
		nip, bucket string
		key         string
		ok          bool
	}{
		{"sent by the pipeline", nip, inv, l.InvoiceXML(nip, time.Now(), "FV/1").Key, true},
		{"downloaded by the pipeline", nip, inv, l.Downloaded(nip, "5261040828-20260101-ABCDEF-01").Key, true},
		{"uploaded by the ERP", nip, inv, l.ERPOutbox(nip, "FV/1.xml").Key, true},
		{"another context's invoice", nip, inv, l.InvoiceXML(other, time.Now(), "FV/1").Key, false},
		{"another context's upload", nip, inv, l.ERPOutbox(other, "FV/1.xml").Key, false},
		{"the outbox without a context", nip, inv, "erp-outbox/FV-1.xml", false},
		{"a UPO", nip, l.Buckets.UPO, nip + "/2026/01/01/S.xml", false},
		{"a rendering", nip, l.Buckets.Visualizations, nip + "/K.pl.pdf", false},
		{"a query part", nip, l.Buckets.QueryParts, nip + "/q/part-00001.zip", false},
		{"another bucket named like the context", nip, "elsewhere", nip + "/sent/x.xml", false},
		{"climbing out", nip, inv, nip + "/../" + other + "/sent/x.xml", false},
		{"dot segment", nip, inv, nip + "/./x.xml", false},
		{"empty segment", nip, inv, nip + "//x.xml", false},
		{"leading slash", nip, inv, "/" + nip + "/x.xml", false},
		{"backslash", nip, inv, nip + `/..\x.xml`, false},
		{"prefix of a longer NIP", "526104082", inv, nip + "/x.xml", false},
		{"no context", "", inv, nip + "/x.xml", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := l.CheckInvoiceRef(c.nip, c.bucket, c.key)
			if c.ok != (err == nil) {
				t.Fatalf("CheckInvoiceRef(%q, %q, %q) = %v, want ok=%v", c.nip, c.bucket, c.key, err, c.ok)
			}
			if err != nil && (!errors.Is(err, ErrOutsideContext) || !strings.Contains(err.Error(), c.key)) {
				t.Errorf("error %v: want ErrOutsideContext naming the key", err)
			}
		})
	}
}
