package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

var (
	t0      = At(time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC))
	xmlHash = hashOf("<Faktura/>")
)

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(h[:])
}

func ref(bucket, key string) *ObjectRef {
	return &ObjectRef{Bucket: bucket, Key: key, SHA256: xmlHash, Size: 10, ContentType: "application/xml"}
}

func meta(invoiceID string) Meta {
	return Meta{CorrelationID: "corr-1", OccurredAt: t0, InvoiceID: invoiceID, ContextNIP: "5265877635"}
}

// samples returns one valid event of every type.
func samples() []Event {
	return []Event{
		&InvoiceSubmitted{Meta: meta("FV/2026/03/1"), InlineXML: []byte("<Faktura/>"), Visualize: true},
		&InvoiceSent{Meta: meta("FV/2026/03/1"), KsefInvoiceID: "20260314-EE-1", SessionID: "20260314-SO-1",
			Mode: ModeOnline, InvoiceHash: xmlHash, XML: ref("ksef-invoices", "a.xml"), SentAt: t0, InvoiceNumber: "FV/2026/03/1",
			Warnings: []string{"P_15 100.00 does not equal the sum of the net and VAT totals 123.00"}},
		&InvoiceAccepted{Meta: meta("FV/2026/03/1"), KsefNumber: "5265877635-20260314-0100001AF629-AF",
			AcquisitionDate: t0, SessionID: "20260314-SO-1", InvoiceHash: xmlHash, XML: ref("ksef-invoices", "a.xml"),
			Warnings: []string{"FaWiersz[2]: duplicate NrWierszaFa 1"}},
		&InvoiceRejected{Meta: meta("FV/2026/03/1"), Code: 450, Description: "Błąd weryfikacji semantyki",
			Details: []string{"P_2 missing"}, Extensions: map[string]string{"line": "3"}, Stage: StageStatus},
		&InvoiceDownloaded{Meta: meta(""), QueryID: "q-1", KsefNumber: "5265877635-20260314-0100001AF629-AF",
			SubjectType: SubjectBuyer, XML: ref("ksef-invoices", "d.xml"), PermanentStorageDate: t0},
		&VisualizeRequested{Meta: meta(""), KsefNumber: "5265877635-20260314-0100001AF629-AF",
			XML: ref("ksef-invoices", "d.xml"), Format: FormatPDF, Language: LangPLEN},
		&InvoiceVisualized{Meta: meta("FV/1"), Format: FormatHTML, Language: LangEN, Document: ref("ksef-visualizations", "v.html")},
		&SessionClosed{Meta: meta(""), SessionID: "20260314-SO-1", Mode: ModeBatch, InvoiceCount: 3},
		&SessionUpoStored{Meta: meta(""), SessionID: "20260314-SO-1", UPO: ref("ksef-upo", "u.xml"),
			KsefNumbers: []string{"5265877635-20260314-0100001AF629-AF"}},
		&QueryRequested{Meta: meta(""), QueryID: "q-1", SubjectType: SubjectSeller, From: t0, To: At(t0.Add(time.Hour)), Incremental: true},
		&QueryCompleted{Meta: meta(""), QueryID: "q-1", InvoiceCount: 2,
			Parts: []ObjectRef{*ref("ksef-query-parts", "p1.zip")}, TruncatedContinuations: 1, HighWaterMark: t0},
		&DeadLettered{Meta: meta("FV/1"), OriginalSubject: "acme.invoice.submitted", OriginalData: []byte{0xc1},
			OriginalHeaders: map[string][]string{"Nats-Msg-Id": {"x"}}, OriginalMsgID: "x", OriginalSeq: 7,
			Reason: "boom", ErrorKind: KindMaxDeliver, Deliveries: 5, Stage: "sender", FirstFailedAt: t0},
		&BatchQueued{Meta: meta("FV/2026/03/1"), Source: "invoice.submitted:5265877635:FV/2026/03/1:9e7c1f0a4b2d3e11",
			XML: ref("ksef-invoices", "a.xml"), InvoiceHash: xmlHash, InvoiceNumber: "FV/2026/03/1", Visualize: true},
	}
}

func TestSamplesCoverEveryType(t *testing.T) {
	var got []string
	for _, e := range samples() {
		got = append(got, e.EventType())
	}
	if !reflect.DeepEqual(got, Types()) {
		t.Fatalf("samples cover %v, Types() = %v", got, Types())
	}
}

func TestRoundTrip(t *testing.T) {
	for _, e := range samples() {
		t.Run(e.EventType(), func(t *testing.T) {
			data, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			m := e.Common()
			if m.V != Version || m.Type != e.EventType() || m.EventID != MsgID(e) {
				t.Fatalf("Encode did not fill common fields: %+v", *m)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, e)
			}
		})
	}
}

// TestGenericDecode proves that a consumer without these Go types (any
// language with a msgpack library) sees named fields, RFC 3339 strings and
// binary payloads.
func TestGenericDecode(t *testing.T) {
	e := &InvoiceSubmitted{Meta: meta("FV/2026/03/1"), InlineXML: []byte("<Faktura/>"), Offline: true}
	data, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"v":              int8(1),
		"type":           "invoice.submitted",
		"event_id":       MsgID(e),
		"correlation_id": "corr-1",
		"occurred_at":    "2026-03-14T09:26:53.589793238Z",
		"invoice_id":     "FV/2026/03/1",
		"context_nip":    "5265877635",
		"inline_xml":     []byte("<Faktura/>"),
		"offline":        true,
		"visualize":      false,
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("generic decode:\n got %#v\nwant %#v", m, want)
	}
	// The payload must be msgpack bin (0xc4 = bin 8), not str.
	if !bytes.Contains(data, append([]byte{0xc4, byte(len("<Faktura/>"))}, "<Faktura/>"...)) {
		t.Fatal("inline_xml is not encoded as msgpack bin")
	}

	// Nested references and time fields of another type.
	a := samples()[2].(*InvoiceAccepted)
	data, err = Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	m = nil
	if err := msgpack.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	xml, ok := m["xml"].(map[string]any)
	if !ok || xml["bucket"] != "ksef-invoices" || xml["key"] != "a.xml" || xml["sha256"] != xmlHash {
		t.Fatalf("xml ref = %#v", m["xml"])
	}
	if m["acquisition_date"] != "2026-03-14T09:26:53.589793238Z" {
		t.Fatalf("acquisition_date = %#v", m["acquisition_date"])
	}
	if _, ok := m["permanent_storage_date"]; ok {
		t.Fatal("zero optional time was encoded")
	}
	// Warnings are a list of strings.
	if w, ok := m["warnings"].([]any); !ok || len(w) != 1 || w[0] != "FaWiersz[2]: duplicate NrWierszaFa 1" {
		t.Fatalf("warnings = %#v", m["warnings"])
	}
}

func TestTimeWireForm(t *testing.T) {
	warsaw := time.FixedZone("CET", 3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000000000Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 120, warsaw), "2026-01-02T02:04:05.000000120Z"},
	}
	for _, tt := range tests {
		if got := At(tt.in).String(); got != tt.want {
			t.Errorf("At(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
	// Other RFC 3339 forms are accepted on input.
	var got Time
	data, _ := msgpack.Marshal("2026-01-02T04:04:05+01:00")
	if err := msgpack.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("decoded %v", got)
	}
}

func encodeMap(t testing.TB, m map[string]any) []byte {
	t.Helper()
	data, err := msgpack.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func validMap() map[string]any {
	return map[string]any{
		"v": 1, "type": "query.requested", "event_id": "query.requested:5265877635:q-1",
		"correlation_id": "c", "occurred_at": "2026-03-14T09:26:53Z", "context_nip": "5265877635",
		"query_id": "q-1", "subject_type": "subject1", "from": "2026-03-01T00:00:00Z",
	}
}

func with(k string, v any) map[string]any {
	m := validMap()
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
	return m
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode(encodeMap(t, validMap())); err != nil {
		t.Fatalf("valid map: %v", err)
	}
	arr, _ := msgpack.Marshal([]any{1, "query.requested"})
	tests := []struct {
		name  string
		data  []byte
		want  error
		field string
	}{
		{"empty", nil, ErrMalformed, ""},
		{"garbage", []byte{0xc1, 0x00}, ErrMalformed, ""},
		{"array", arr, ErrMalformed, ""},
		{"truncated", encodeMap(t, validMap())[:20], ErrMalformed, ""},
		{"trailing", append(encodeMap(t, validMap()), 0x01), ErrMalformed, ""},
		{"wrong field type", encodeMap(t, with("query_id", 5)), ErrMalformed, ""},
		{"bad time", encodeMap(t, with("from", "yesterday")), ErrMalformed, ""},
		{"unknown type", encodeMap(t, with("type", "invoice.exploded")), ErrUnknownType, ""},
		{"missing type", encodeMap(t, with("type", nil)), ErrInvalid, "type"},
		{"v2", encodeMap(t, with("v", 2)), ErrUnknownVersion, ""},
		{"missing v", encodeMap(t, with("v", nil)), ErrUnknownVersion, ""},
		{"missing query_id", encodeMap(t, with("query_id", nil)), ErrInvalid, "query_id"},
		{"bad nip", encodeMap(t, with("context_nip", "52658776")), ErrInvalid, "context_nip"},
		{"bad subject", encodeMap(t, with("subject_type", "Subject1")), ErrInvalid, "subject_type"},
		{"to before from", encodeMap(t, with("to", "2026-02-01T00:00:00Z")), ErrInvalid, "to"},
		{"missing event_id", encodeMap(t, with("event_id", nil)), ErrInvalid, "event_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode(tt.data)
			if err == nil {
				t.Fatalf("decoded %#v", e)
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var fe *FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Fatalf("err = %v, want field %s", err, tt.field)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	e, err := Decode(encodeMap(t, with("added_in_a_later_release", "x")))
	if err != nil {
		t.Fatal(err)
	}
	if q := e.(*QueryRequested); q.QueryID != "q-1" {
		t.Fatalf("got %+v", q)
	}
}

func TestValidate(t *testing.T) {
	big := bytes.Repeat([]byte("x"), DefaultMaxInlineSize+1)
	tests := []struct {
		name  string
		e     Event
		codec Codec
		field string // "" = valid
	}{
		{"xml ref source", &InvoiceSubmitted{Meta: meta("1"), XML: &ObjectRef{Bucket: "b", Key: "k"}}, Codec{}, ""},
		{"generate source", &InvoiceSubmitted{Meta: meta("1"), Generate: []byte(`{"a":1}`)}, Codec{}, ""},
		{"no source", &InvoiceSubmitted{Meta: meta("1")}, Codec{}, "xml"},
		{"two sources", &InvoiceSubmitted{Meta: meta("1"), XML: ref("b", "k"), InlineXML: []byte("x")}, Codec{}, "xml"},
		{"generate not json", &InvoiceSubmitted{Meta: meta("1"), Generate: []byte(`{`)}, Codec{}, "generate"},
		{"inline too large", &InvoiceSubmitted{Meta: meta("1"), InlineXML: big}, Codec{}, "inline_xml"},
		{"inline limit raised", &InvoiceSubmitted{Meta: meta("1"), InlineXML: big}, Codec{MaxInlineSize: 1 << 20}, ""},
		{"inline unlimited", &InvoiceSubmitted{Meta: meta("1"), InlineXML: big}, Codec{MaxInlineSize: -1}, ""},
		{"inline limit lowered", &InvoiceSubmitted{Meta: meta("1"), InlineXML: []byte("<a/>")}, Codec{MaxInlineSize: 3}, "inline_xml"},
		{"missing invoice_id", &InvoiceSubmitted{Meta: meta(""), InlineXML: []byte("x")}, Codec{}, "invoice_id"},
		{"control char id", &InvoiceSubmitted{Meta: meta("a\nb"), InlineXML: []byte("x")}, Codec{}, "invoice_id"},
		{"ref without key", &InvoiceSubmitted{Meta: meta("1"), XML: &ObjectRef{Bucket: "b"}}, Codec{}, "xml.key"},
		{"ref bad sha", &InvoiceSubmitted{Meta: meta("1"), XML: &ObjectRef{Bucket: "b", Key: "k", SHA256: "abc"}}, Codec{}, "xml.sha256"},
		{"sent bad mode", &InvoiceSent{Meta: meta("1"), KsefInvoiceID: "r", SessionID: "s", Mode: "fast",
			InvoiceHash: xmlHash, XML: ref("b", "k"), SentAt: t0, InvoiceNumber: "1"}, Codec{}, "mode"},
		{"accepted no xml", &InvoiceAccepted{Meta: meta("1"), KsefNumber: "k", AcquisitionDate: t0, SessionID: "s",
			InvoiceHash: xmlHash}, Codec{}, "xml"},
		{"rejected pipeline code 0", &InvoiceRejected{Meta: meta("1"), Description: "schema", Stage: StageValidate}, Codec{}, ""},
		{"rejected negative", &InvoiceRejected{Meta: meta("1"), Code: -1, Description: "x", Stage: StageValidate}, Codec{}, "code"},
		{"visualize unnamed", &VisualizeRequested{Meta: meta(""), XML: ref("b", "k"), Format: FormatPDF, Language: LangPL}, Codec{}, "ksef_number"},
		{"visualize by invoice id", &VisualizeRequested{Meta: meta("1"), XML: ref("b", "k"), Format: FormatPDF, Language: LangPL}, Codec{}, ""},
		{"visualize bad lang", &VisualizeRequested{Meta: meta("1"), XML: ref("b", "k"), Format: FormatPDF, Language: "de"}, Codec{}, "language"},
		{"upo bad number", &SessionUpoStored{Meta: meta(""), SessionID: "s", UPO: ref("b", "k"), KsefNumbers: []string{""}}, Codec{}, "ksef_numbers[0]"},
		{"completed bad part", &QueryCompleted{Meta: meta(""), QueryID: "q", Parts: []ObjectRef{{Bucket: "b"}}}, Codec{}, "parts[0].key"},
		{"dlq bad kind", &DeadLettered{Meta: Meta{OccurredAt: t0}, OriginalSubject: "s", Reason: "r", ErrorKind: "oops", Stage: "w"}, Codec{}, "error_kind"},
		{"dlq without nip", &DeadLettered{Meta: Meta{OccurredAt: t0}, OriginalSubject: "s", Reason: "r", ErrorKind: KindMalformed, Stage: "w"}, Codec{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.codec.Encode(tt.e)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tt.codec.Decode(data); err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
}

func TestEncodeRejectsForeignType(t *testing.T) {
	e := &SessionClosed{Meta: meta(""), SessionID: "s", Mode: ModeOnline}
	e.Type = TypeInvoiceSent
	if _, err := Encode(e); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

func TestEncodeDefaults(t *testing.T) {
	e := &SessionClosed{Meta: Meta{ContextNIP: "5265877635"}, SessionID: "s", Mode: ModeOnline}
	before := time.Now()
	if _, err := Encode(e); err != nil {
		t.Fatal(err)
	}
	if e.OccurredAt.Before(before) || e.CorrelationID != e.EventID || e.EventID != "session.closed:5265877635:s" {
		t.Fatalf("defaults: %+v", e.Meta)
	}
}

func TestMsgID(t *testing.T) {
	sub := func(xml string) *InvoiceSubmitted {
		return &InvoiceSubmitted{Meta: meta("FV/1"), InlineXML: []byte(xml)}
	}
	if a, b := MsgID(sub("<a/>")), MsgID(sub("<a/>")); a != b {
		t.Errorf("same submission, ids %s and %s", a, b)
	}
	if a, b := MsgID(sub("<a/>")), MsgID(sub("<b/>")); a == b {
		t.Errorf("corrected submission kept id %s", a)
	}
	// Fields outside the business key do not change the id.
	a1 := samples()[2].(*InvoiceAccepted)
	a2 := *a1
	a2.OccurredAt = At(time.Now())
	a2.CorrelationID = "other"
	if MsgID(a1) != MsgID(&a2) || MsgID(a1) != "invoice.accepted:5265877635:FV/2026/03/1" {
		t.Errorf("accepted ids %s, %s", MsgID(a1), MsgID(&a2))
	}
	d := samples()[4].(*InvoiceDownloaded)
	if got, want := MsgID(d), "invoice.downloaded:5265877635:q-1:5265877635-20260314-0100001AF629-AF"; got != want {
		t.Errorf("downloaded id %s, want %s", got, want)
	}
	seen := map[string]string{}
	for _, e := range samples() {
		id := MsgID(e)
		if prev, ok := seen[id]; ok {
			t.Errorf("%s and %s share id %s", prev, e.EventType(), id)
		}
		seen[id] = e.EventType()
		if !strings.HasPrefix(id, e.EventType()+":") {
			t.Errorf("id %s lacks the type", id)
		}
	}
}

func TestSubjects(t *testing.T) {
	dl := &DeadLettered{OriginalSubject: "acme.invoice.sent"}
	tests := []struct {
		prefix string
		got    string
		want   string
	}{
		{"acme", Subjects{"acme"}.InvoiceSubmitted(), "acme.invoice.submitted"},
		{"", Subjects{}.InvoiceSubmitted(), "invoice.submitted"},
		{"acme", Subjects{"acme"}.InvoiceVisualize(), "acme.invoice.visualize"},
		{"acme", Subjects{"acme"}.SessionUpoStored(), "acme.session.upo_stored"},
		{"acme", Subjects{"acme"}.DeadLetter("acme.invoice.sent"), "acme.dlq.invoice.sent"},
		{"acme", Subjects{"acme"}.For(dl), "acme.dlq.invoice.sent"},
		{"", Subjects{}.DeadLetter("query.requested"), "dlq.query.requested"},
		{"a.b", Subjects{"a.b"}.For(&QueryCompleted{}), "a.b.query.completed"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("prefix %q: got %s, want %s", tt.prefix, tt.got, tt.want)
		}
	}
	s := Subjects{"acme"}
	for _, e := range samples() {
		want := "acme." + e.EventType()
		switch e := e.(type) {
		case *DeadLettered:
			continue
		case *BatchQueued:
			want = "acme.batch.queued." + e.ContextNIP
		}
		if got := s.For(e); got != want {
			t.Errorf("For(%T) = %s, want %s", e, got, want)
		}
	}
	if got := s.Wildcards(); !reflect.DeepEqual(got, []string{"acme.invoice.>", "acme.session.>", "acme.query.>", "acme.dlq.>", "acme.batch.>"}) {
		t.Errorf("Wildcards = %v", got)
	}
	for _, p := range []string{"acme", "a.b", ""} {
		if err := (Subjects{p}).Validate(); err != nil {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
	for _, p := range []string{"a..b", ".a", "a.", "a*", "a b", "a.>"} {
		if err := (Subjects{p}).Validate(); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, e := range samples() {
		data, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{0x80})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// Whatever decodes must re-encode and decode to the same event.
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	e := samples()[2]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data, err := Encode(samples()[2])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestResubmissionGetsItsOwnMsgID(t *testing.T) {
	first := &InvoiceSubmitted{InlineXML: []byte("<Faktura/>")}
	first.InvoiceID, first.ContextNIP = "FV/1", "5261040828"
	again := *first
	again.Resubmission = 1
	if MsgID(first) == MsgID(&again) {
		t.Fatalf("a resubmission must not be deduplicated against the original: %s", MsgID(first))
	}
	same := *first
	if MsgID(first) != MsgID(&same) {
		t.Fatal("the same submission must keep its id")
	}
	data, err := Encode(&again)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.(*InvoiceSubmitted).Resubmission != 1 {
		t.Fatal("resubmission lost in transit")
	}
}

func TestBatchInvoiceSentNeedsNoInvoiceID(t *testing.T) {
	ev := &InvoiceSent{SessionID: "SB-1", Mode: ModeBatch, InvoiceHash: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		XML: &ObjectRef{Bucket: "b", Key: "k", SHA256: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", Size: 1}, SentAt: At(time.Now()), InvoiceNumber: "FV/1"}
	ev.InvoiceID, ev.ContextNIP = "FV/1", "5261040828"
	if _, err := Encode(ev); err != nil {
		t.Fatalf("a batch invoice.sent without ksef_invoice_id is refused: %v", err)
	}
	ev.Mode = ModeOnline
	if _, err := Encode(ev); err == nil {
		t.Fatal("an online invoice.sent without ksef_invoice_id is accepted")
	}
	ev.Mode, ev.KsefInvoiceID = ModeBatch, ""
	again := *ev
	again.SessionID = "SB-2"
	if MsgID(ev) == MsgID(&again) {
		t.Fatal("sends of one invoice in two sessions share a message id")
	}
}
