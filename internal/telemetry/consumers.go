package telemetry

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerInfo looks up a worker's durable JetStream consumer.
type ConsumerInfo func(ctx context.Context) (*jetstream.ConsumerInfo, error)

// Consumer metrics, read from JetStream at each scrape. Every replica of a worker reports the
// same consumer: aggregate with max by (worker).
const (
	MetricConsumerPending    = "ksef_consumer_pending_messages"
	MetricConsumerAckPending = "ksef_consumer_ack_pending_messages"
)

var (
	descConsumerPending = prometheus.NewDesc(MetricConsumerPending,
		"Messages waiting for the worker's consumer, not yet delivered (its lag; KEDA scales on it).", []string{"worker"}, nil)
	descConsumerAckPending = prometheus.NewDesc(MetricConsumerAckPending,
		"Messages delivered to the worker's consumer and not yet acknowledged: in flight, snoozed (invoices KSeF is still processing) or waiting to be retried.",
		[]string{"worker"}, nil)
)

// consumers collects the consumer metrics of the registered workers.
type consumers struct {
	mu    sync.Mutex
	infos map[string]ConsumerInfo
}

// Consumer registers the consumer of worker name, reported at each scrape.
func (m *Metrics) Consumer(name string, info ConsumerInfo) {
	m.consumers.mu.Lock()
	m.consumers.infos[name] = info
	m.consumers.mu.Unlock()
}

func (c *consumers) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConsumerPending
	ch <- descConsumerAckPending
}

// Collect asks JetStream about every consumer at once; one that does not answer in time (NATS
// away) is left out of the scrape.
func (c *consumers) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	infos := make(map[string]ConsumerInfo, len(c.infos))
	for k, v := range c.infos {
		infos[k] = v
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for name, info := range infos {
		wg.Go(func() {
			ci, err := info(ctx)
			if err != nil {
				return
			}
			ch <- prometheus.MustNewConstMetric(descConsumerPending, prometheus.GaugeValue, float64(ci.NumPending), name)
			ch <- prometheus.MustNewConstMetric(descConsumerAckPending, prometheus.GaugeValue, float64(ci.NumAckPending), name)
		})
	}
	wg.Wait()
}
