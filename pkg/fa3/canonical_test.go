package fa3

import (
	"bytes"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	a := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<f:Faktura xmlns:f="` + Namespace + `" xmlns:unused="urn:x"><f:P_2 b='2' a="1">x &amp; y</f:P_2><!-- note --><f:Empty/></f:Faktura>`)
	b := []byte(`<f:Faktura xmlns:unused="urn:x" xmlns:f="` + Namespace + `"><f:P_2 a='1'  b="2">x &#38; y</f:P_2><f:Empty></f:Empty></f:Faktura>`)
	ca, err := Canonical(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Canonical(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca, cb) {
		t.Fatalf("canonical forms differ:\n%s\n%s", ca, cb)
	}
	want := `<f:Faktura xmlns:f="` + Namespace + `"><f:P_2 a="1" b="2">x &amp; y</f:P_2><f:Empty></f:Empty></f:Faktura>`
	if string(ca) != want {
		t.Fatalf("Canonical =\n%s\nwant\n%s", ca, want)
	}
}

func TestCanonicalSamplesStable(t *testing.T) {
	for _, s := range samples(t, "valid") {
		c1, err := Canonical(s.data)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		c2, err := Canonical(c1)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !bytes.Equal(c1, c2) {
			t.Errorf("%s: canonical form is not idempotent", s.name)
		}
		if bytes.HasPrefix(c1, []byte("<?xml")) {
			t.Errorf("%s: XML declaration kept", s.name)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	for in, kind := range map[string]ErrorKind{
		"": KindEmpty,
		`<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`: KindDTD,
		"<a><b></a>": KindNotWellFormed,
	} {
		_, err := Canonical([]byte(in))
		if KindOf(err) != kind {
			t.Errorf("Canonical(%q) = %v, want %v", in, err, kind)
		}
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Errorf("empty message for %q", in)
		}
	}
}
