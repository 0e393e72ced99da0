package fa3

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestValidateConcurrent shares one Validator among 8 goroutines and checks
// that each gets exactly the outcome (and first error) a sequential run
// gives: the compiled schema is shared, error capture is per call.
func TestValidateConcurrent(t *testing.T) {
	v := newXSDValidator(t)
	all := append(samples(t, "valid"), samples(t, "invalid")...)
	want := make(map[string]string, len(all))
	for _, s := range all {
		_, err := v.Validate(context.Background(), s.data)
		want[s.name] = fmt.Sprint(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				s := all[(g*7+i)%len(all)]
				_, err := v.Validate(context.Background(), s.data)
				if got := fmt.Sprint(err); got != want[s.name] {
					errs <- fmt.Errorf("%s: got %q, sequential run gave %q", s.name, got, want[s.name])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// rssKB returns the resident set size from /proc, or 0 where unavailable.
func rssKB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// TestValidateDoesNotLeak validates 2,000 documents (valid and invalid, so
// that both the success and the error paths run) and checks that the
// resident set grows by far less than libxml2 would leak if documents or
// contexts were not freed (each document tree is ~100 KB).
func TestValidateDoesNotLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	v := newXSDValidator(t)
	valid := readSample(t, "valid", "zalacznik-FA_3_Zalacznik_Przyklad_1.xml")
	invalid := readSample(t, "invalid", "seller-nip-nine-digits.xml")
	broken := readSample(t, "invalid", "truncated-not-well-formed.xml")
	run := func(n int) {
		for i := range n {
			var in []byte
			switch i % 3 {
			case 0:
				in = valid
			case 1:
				in = invalid
			default:
				in = broken
			}
			_, _ = v.Validate(context.Background(), in)
			if i%10 == 0 {
				_, _ = Canonical(valid)
			}
		}
	}
	run(200) // warm up allocators
	runtime.GC()
	before := rssKB()
	if before == 0 {
		t.Skip("no /proc/self/status")
	}
	run(2000)
	runtime.GC()
	after := rssKB()
	t.Logf("RSS %d kB -> %d kB", before, after)
	if grow := after - before; grow > 20*1024 {
		t.Errorf("RSS grew by %d kB over 2,000 validations", grow)
	}
}

func TestValidateLargeDocument(t *testing.T) {
	v := newXSDValidator(t)
	data := bigInvoice(t, 30<<10)
	res, err := v.Validate(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSemantics(res.Invoice); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("<NrWierszaFa>60</NrWierszaFa>")) {
		t.Fatalf("document smaller than expected: %d bytes", len(data))
	}
}
