package ksef

import (
	"errors"
	"testing"
	"time"
)

func TestValidateNumberOfficialExample(t *testing.T) {
	if err := ValidateNumber("5265877635-20250826-0100001AF629-AF"); err != nil {
		t.Fatalf("the Ministry's example must validate: %v", err)
	}
}

func TestValidateNumberRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"short", "5265877635-20250826-0100001AF629-A"},
		{"wrong checksum", "5265877635-20250826-0100001AF629-AE"},
		{"lower-case hex", "5265877635-20250826-0100001af629-AF"},
		{"bad separator", "5265877635_20250826-0100001AF629-AF"},
		{"letter in NIP", "52658776X5-20250826-0100001AF629-AF"},
		{"bad date", "5265877635-20251326-0100001AF629-AF"},
		{"changed technical part", "5265877635-20250826-0100001AF628-AF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateNumber(tc.in); !errors.Is(err, ErrInvalidNumber) {
				t.Fatalf("ValidateNumber(%q) = %v, want ErrInvalidNumber", tc.in, err)
			}
		})
	}
}

func TestNewNumberRoundTrip(t *testing.T) {
	date := time.Date(2025, 8, 26, 13, 0, 0, 0, time.UTC)
	got := NewNumber("5265877635", date, 0x0100001AF629)
	if got != "5265877635-20250826-0100001AF629-AF" {
		t.Fatalf("NewNumber = %s, want the Ministry's example", got)
	}
	for tech := uint64(0); tech < 2000; tech += 7 {
		n := NewNumber("1111111111", date, tech*0x9E3779B97F4A7C15)
		if err := ValidateNumber(n); err != nil {
			t.Fatalf("generated %s does not validate: %v", n, err)
		}
		if NumberNIP(n) != "1111111111" {
			t.Fatalf("NumberNIP(%s) = %s", n, NumberNIP(n))
		}
	}
}

func TestStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		s                          StatusCode
		final, accepted, retryable bool
	}{
		{StatusReceived, false, false, false},
		{StatusProcessing, false, false, false},
		{StatusAccepted, true, true, false},
		{StatusSessionError, true, false, true},
		{StatusPermission, true, false, false},
		{StatusAttachment, true, false, false},
		{StatusInvalid, true, false, false},
		{StatusDecryption, true, false, false},
		{StatusDuplicate, true, false, false},
		{StatusSemantic, true, false, false},
		{StatusUnknown, true, false, true},
		{StatusCancelled, true, false, true},
		{StatusCode(999), false, false, false},
	} {
		if got := tc.s.Final(); got != tc.final {
			t.Errorf("%d.Final() = %v", tc.s, got)
		}
		if got := tc.s.Accepted(); got != tc.accepted {
			t.Errorf("%d.Accepted() = %v", tc.s, got)
		}
		if got := tc.s.Retryable(); got != tc.retryable {
			t.Errorf("%d.Retryable() = %v", tc.s, got)
		}
		if tc.s.Known() && tc.s.Description() == "" {
			t.Errorf("%d has no description", tc.s)
		}
	}
}

func TestCodes(t *testing.T) {
	codes := []Code{1001, 1002, 1003, 1004, 1005, 1101, 1102, 1103, 1104, 1105, 1106, 1107, 1108, 1109, 1110, 1111,
		1201, 1202, 1203, 1204, 1205, 1206, 1207, 1208, 1209, 1301, 1302, 1303, 1304}
	for _, c := range codes {
		if !c.Known() || c.Name() == "" || c.Description() == "" {
			t.Errorf("code %d is not fully described", c)
		}
	}
	if Code(1112).Known() {
		t.Error("1112 is not a seed code")
	}
}
