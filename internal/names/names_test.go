package names

import "testing"

// TestKV: buckets are named after the stream, so that prefixed tenants stay apart.
func TestKV(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{KV("", State), "KSEF_STATE"},
		{KV("acme.prod-1", Marks), "KSEF_ACME_PROD_1_MARKS"},
		{Failures("acme"), "KSEF_ACME_failures"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s, want %s", tc.got, tc.want)
		}
	}
}
