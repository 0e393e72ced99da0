package emulator

import (
	"maps"
	"strings"
	"testing"
)

func TestParseTokens(t *testing.T) {
	got, err := ParseTokens("dev=5265877635, 6891152920=abc;\n# comment\n\n  tok-3 = 3935777054 \n9999999999=1234567891")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"dev": "5265877635", "abc": "6891152920", "tok-3": "3935777054", "1234567891": "9999999999"}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"secret-token", "a=b", "secret=0000000000", "x=5265877635,x=6891152920", "=5265877635"} {
		_, err := ParseTokens(bad)
		if err == nil {
			t.Errorf("%q: no error", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the token: %v", bad, err)
		}
	}
}
