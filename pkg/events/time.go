package events

import (
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// TimeLayout is the wire form of every time: RFC 3339 in UTC with exactly
// nine fractional digits, so that the strings sort chronologically.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Time is a time.Time that travels as an RFC 3339 string (see [TimeLayout])
// rather than as a msgpack timestamp extension, which not every msgpack
// library understands. The zero Time travels as nil and, in optional fields,
// is left out.
type Time struct{ time.Time }

// At returns t as a Time in UTC.
func At(t time.Time) Time { return Time{t.UTC()} }

// String returns the wire form.
func (t Time) String() string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (t Time) EncodeMsgpack(enc *msgpack.Encoder) error {
	if t.IsZero() {
		return enc.EncodeNil()
	}
	return enc.EncodeString(t.String())
}

// DecodeMsgpack implements msgpack.CustomDecoder. It accepts nil and any
// RFC 3339 string (any number of fractional digits, any offset).
func (t *Time) DecodeMsgpack(dec *msgpack.Decoder) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if c == msgpcode.Nil {
		*t = Time{}
		return dec.DecodeNil()
	}
	s, err := dec.DecodeString()
	if err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time %q is not RFC 3339", s)
	}
	*t = Time{v.UTC()}
	return nil
}
