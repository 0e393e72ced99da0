package events

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// DefaultMaxInlineSize is the default limit on InvoiceSubmitted.InlineXML
// and .Generate. Larger invoices go to storage and travel as an ObjectRef.
const DefaultMaxInlineSize = 256 << 10

// Codec encodes and decodes events with configurable limits. The zero
// Codec uses the defaults.
type Codec struct {
	// MaxInlineSize limits InvoiceSubmitted.InlineXML and .Generate in
	// bytes: 0 means DefaultMaxInlineSize, negative means no limit.
	MaxInlineSize int
}

// Encode encodes e with the default Codec.
func Encode(e Event) ([]byte, error) { return Codec{}.Encode(e) }

// Decode decodes data with the default Codec.
func Decode(data []byte) (Event, error) { return Codec{}.Decode(data) }

func (c Codec) maxInline() int {
	if c.MaxInlineSize == 0 {
		return DefaultMaxInlineSize
	}
	return c.MaxInlineSize
}

func (c Codec) checkSize(e Event) error {
	s, ok := e.(*InvoiceSubmitted)
	if !ok {
		return nil
	}
	max := c.maxInline()
	if max < 0 {
		return nil
	}
	if len(s.InlineXML) > max {
		return invalid("inline_xml", "larger than "+strconv.Itoa(max)+" bytes")
	}
	if len(s.Generate) > max {
		return invalid("generate", "larger than "+strconv.Itoa(max)+" bytes")
	}
	return nil
}

// Encode fills in the common fields (v, type, event_id; occurred_at when
// zero; correlation_id when empty, to the event id), validates e and
// returns its msgpack encoding. It modifies e through e.Common().
func (c Codec) Encode(e Event) ([]byte, error) {
	m := e.Common()
	if m.V == 0 {
		m.V = Version
	}
	if m.Type != "" && m.Type != e.EventType() {
		return nil, invalid("type", fmt.Sprintf("%q set on a %s event", m.Type, e.EventType()))
	}
	m.Type = e.EventType()
	if m.OccurredAt.IsZero() {
		m.OccurredAt = At(time.Now())
	}
	m.EventID = MsgID(e)
	if m.CorrelationID == "" {
		m.CorrelationID = m.EventID
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if err := c.checkSize(e); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", e.EventType(), err)
	}
	return buf.Bytes(), nil
}

// header is the part of every event Decode reads first to dispatch.
type header struct {
	V    int    `msgpack:"v"`
	Type string `msgpack:"type"`
}

// Decode reads an event: the "type" and "v" fields choose the Go type, the
// event is then decoded and validated. Unknown fields are ignored (a newer
// producer may add optional fields without a version change). Errors wrap
// ErrInvalid: ErrMalformed, ErrUnknownType, ErrUnknownVersion or a
// *FieldError.
func (c Codec) Decode(data []byte) (Event, error) {
	var h header
	if err := unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if h.Type == "" {
		return nil, missing("type")
	}
	e := newEvent(h.Type)
	if e == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, h.Type)
	}
	if h.V != Version {
		return nil, fmt.Errorf("%w %d of %s", ErrUnknownVersion, h.V, h.Type)
	}
	if err := unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, h.Type, err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if err := c.checkSize(e); err != nil {
		return nil, err
	}
	return e, nil
}

// unmarshal decodes exactly one msgpack value that must be a map.
func unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New("empty message")
	}
	// fixmap 0x80-0x8f, map16 0xde, map32 0xdf: events are maps, never
	// arrays (the struct-as-array encoding is not part of the contract).
	if b := data[0]; !(b >= 0x80 && b <= 0x8f) && b != 0xde && b != 0xdf {
		return errors.New("not a msgpack map")
	}
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d trailing bytes", r.Len())
	}
	return nil
}
