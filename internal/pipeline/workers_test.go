package pipeline

import (
	"os"
	"testing"
)

// TestConsumerConfigs: the consumers as the workers describe them, with a configured
// concurrency overriding each worker's default; no batch consumer when batches are off.
func TestConsumerConfigs(t *testing.T) {
	s, err := SettingsFromEnv(func(string) string { return "" }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	type consumer struct{ concurrency, maxAckPending, subjects int }
	got := func(s Settings) map[string]consumer {
		out := map[string]consumer{}
		for _, c := range (&Runtime{Settings: s}).consumerConfigs() {
			out[c.Name] = consumer{c.Concurrency, c.MaxAckPending, len(c.Subjects)}
		}
		return out
	}
	c := got(s)
	want := map[string]consumer{Sender: {256, 0, 1}, SenderBatch: {16, s.Batch.MaxAckPending(), 1}, Poller: {32, 100_000, 2},
		Downloader: {s.Downloader.Concurrency, 0, 1}, Visualizer: {4, 0, 3}}
	if len(c) != len(want) {
		t.Errorf("consumers %v, want %v", c, want)
	}
	for name, w := range want {
		if c[name] != w {
			t.Errorf("%s: %+v, want %+v", name, c[name], w)
		}
	}
	s.Concurrency, s.Batch.Disabled = 3, true
	c = got(s)
	if _, ok := c[SenderBatch]; ok || c[Poller].concurrency != 3 {
		t.Errorf("batch off, concurrency 3: %v", c)
	}
}
