package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// baselineSeller is the context of the one-at-a-time baseline, apart from the pipeline's; its
// invoices go to a buyer of their own, so the downloader's query sees only the pipeline's.
var (
	baselineSeller = NIP(900001)
	baselineBuyer  = NIP(900002)
)

// Baseline is the obvious process measured against the same emulator: one invoice at a time.
type Baseline struct {
	Latency    Latency
	Invoices   int
	Elapsed    time.Duration
	Throughput float64 // invoices/s
	P50        time.Duration
}

// oneAtATime sends invoices with the pipeline's own KSeF client the obvious way: open a session,
// then for each invoice send it and ask for its status every 100 ms until it is final.
func oneAtATime(ctx context.Context, v *env, invoices []Invoice, lat Latency) (Baseline, error) {
	res := Baseline{Latency: lat, Invoices: len(invoices)}
	client, err := ksef.New(v.e.EmulatorURL, ksef.WithToken(v.cfg.Tokens[baselineSeller]))
	if err != nil {
		return res, err
	}
	start := time.Now()
	s, err := client.OpenSession(ctx)
	if err != nil {
		return res, fmt.Errorf("bench: baseline session: %w", err)
	}
	defer s.Close(context.WithoutCancel(ctx))
	var each []time.Duration
	for _, inv := range invoices {
		t0 := time.Now()
		sent, err := s.Send(ctx, inv.XML)
		if err != nil {
			return res, fmt.Errorf("bench: baseline send: %w", err)
		}
		for {
			info, err := client.InvoiceStatus(ctx, sent.Id)
			if err != nil {
				return res, fmt.Errorf("bench: baseline status: %w", err)
			}
			if code := ksef.StatusCode(info.Status.Code); code.Final() {
				if !code.Accepted() {
					return res, fmt.Errorf("bench: baseline invoice %s ended with %d", inv.ID, code)
				}
				break
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		each = append(each, time.Since(t0))
	}
	res.Elapsed = time.Since(start)
	res.Throughput = float64(len(invoices)) / res.Elapsed.Seconds()
	res.P50 = percentile(each, 0.5)
	return res, nil
}

// Raw is the messaging floor: JetStream publish and consume of messages of the invoices' sizes
// on the pipeline's server, with nothing else done.
type Raw struct {
	Messages   int
	Bytes      int64
	Elapsed    time.Duration
	Throughput float64 // messages/s
}

// rawJetStream publishes one message per invoice (the XML's size plus an event's envelope) from
// 8 publishers into a stream of its own and consumes them with a durable pull consumer that
// acknowledges each, as the workers do.
func rawJetStream(ctx context.Context, v *env, invoices []Invoice) (Raw, error) {
	js := v.e.Runtime.JS
	res := Raw{Messages: len(invoices)}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"benchraw.>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy})
	if err != nil {
		return res, fmt.Errorf("bench: raw stream: %w", err)
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), "BENCH_RAW")
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 10000})
	if err != nil {
		return res, fmt.Errorf("bench: raw consumer: %w", err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		m.Ack()
		if got.Add(1) == int64(len(invoices)) {
			close(done)
		}
	})
	if err != nil {
		return res, err
	}
	defer cc.Stop()
	next := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := make([]byte, len(invoices[i].XML)+300)
				copy(body, invoices[i].XML)
				if _, err := js.Publish(ctx, fmt.Sprintf("benchraw.%d", i%16), body); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i, inv := range invoices {
		res.Bytes += int64(len(inv.XML) + 300)
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			return res, err
		}
	}
	close(next)
	wg.Wait()
	select {
	case <-done:
	case err := <-errs:
		return res, err
	case <-time.After(5 * time.Minute):
		return res, fmt.Errorf("bench: raw consumer got %d of %d", got.Load(), len(invoices))
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.Elapsed = time.Since(start)
	res.Throughput = float64(len(invoices)) / res.Elapsed.Seconds()
	return res, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func storageMeta() storage.ObjectMeta { return storage.ObjectMeta{ContentType: "application/xml"} }
