package ksef

import (
	"errors"
	"fmt"
	"time"
)

// NumberLength is the length of a KSeF number: NIP-YYYYMMDD-XXXXXXXXXXXX-CC.
const NumberLength = 35

// ErrInvalidNumber is wrapped by every error of ValidateNumber.
var ErrInvalidNumber = errors.New("invalid KSeF number")

// NewNumber builds a KSeF number (official/faktury/numer-ksef.md) from the seller's NIP, the
// acceptance date and a 48-bit technical part, with its CRC-8 checksum.
func NewNumber(nip string, date time.Time, technical uint64) string {
	data := fmt.Sprintf("%s-%s-%012X", nip, date.UTC().Format("20060102"), technical&0xFFFFFFFFFFFF)
	return fmt.Sprintf("%s-%02X", data, crc8([]byte(data)))
}

// ValidateNumber checks the length, the structure and the CRC-8 checksum of a KSeF number.
func ValidateNumber(s string) error {
	if len(s) != NumberLength {
		return fmt.Errorf("%w: length %d, want %d", ErrInvalidNumber, len(s), NumberLength)
	}
	for i := 0; i < NumberLength; i++ {
		c := s[i]
		switch {
		case i == 10 || i == 19 || i == 32:
			if c != '-' {
				return fmt.Errorf("%w: want '-' at position %d", ErrInvalidNumber, i+1)
			}
		case i < 19:
			if c < '0' || c > '9' {
				return fmt.Errorf("%w: want a digit at position %d", ErrInvalidNumber, i+1)
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
				return fmt.Errorf("%w: want an upper-case hex digit at position %d", ErrInvalidNumber, i+1)
			}
		}
	}
	if _, err := time.Parse("20060102", s[11:19]); err != nil {
		return fmt.Errorf("%w: bad date %q", ErrInvalidNumber, s[11:19])
	}
	if want := fmt.Sprintf("%02X", crc8([]byte(s[:32]))); want != s[33:] {
		return fmt.Errorf("%w: checksum %s, want %s", ErrInvalidNumber, s[33:], want)
	}
	return nil
}

// NumberNIP returns the seller NIP part of a KSeF number (no validation).
func NumberNIP(s string) string {
	if len(s) < 10 {
		return ""
	}
	return s[:10]
}

// crc8 is CRC-8 with polynomial 0x07 and initial value 0x00 (no reflection, no final XOR).
func crc8(data []byte) byte {
	var crc byte
	for _, b := range data {
		crc ^= b
		for range 8 {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x07
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// IsNIP reports whether s has the form of a NIP: ten digits (the checksum is not checked; KSeF's
// own schema accepts any ten digits of its pattern).
func IsNIP(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
