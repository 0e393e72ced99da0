package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// clusterSettings are a pipeline's settings against a NATS cluster, with R replicas, local
// storage and a KSeF nobody calls (provisioning is under test, not sending).
func clusterSettings(t *testing.T, url string, replicas int) pipeline.Settings {
	return pipeline.Settings{
		NATS:    natsx.Config{URL: url, Replicas: replicas},
		Storage: storage.Config{Backend: "local", Dir: t.TempDir(), Buckets: storage.DefaultBuckets()},
		KSeF: ksefconn.Settings{APIURL: "http://127.0.0.1:9", Tokens: ksefconn.Tokens(demo.Tokens()), Limits: "off",
			LimitMultiplier: 1, LimitHeadroom: 1, MaxLimitWait: time.Second, RequestTimeout: time.Second},
		SchemaDir: testenv.SchemaDir(t),
		AckWait:   10 * time.Second,
	}
}

// provision opens a runtime and runs workers until their consumers and the failures bucket
// exist (a worker provisions those when it starts); it returns the runtime's first error.
func provision(ctx context.Context, t *testing.T, s pipeline.Settings, log zerolog.Logger, workers ...string) error {
	rt, err := pipeline.Open(ctx, s, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(rctx, workers...) }()
	defer func() { cancel(); <-done }()
	stream := natsx.StreamName(s.NATS.SubjectPrefix)
	exists := func() bool {
		// A request of a cluster under way may go unanswered: ask with a timeout of its own.
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		for _, w := range workers {
			if _, err := rt.JS.Consumer(rctx, stream, w); err != nil {
				return false
			}
		}
		_, err := rt.JS.KeyValue(rctx, stream+"_failures")
		return err == nil
	}
	for {
		if exists() {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("workers stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkReplicated fails unless every stream of the cluster (the pipeline's and every KV
// bucket's) and every consumer has want replicas, each with a leader.
func checkReplicated(t *testing.T, js jetstream.JetStream, want int, wantStreams ...string) {
	t.Helper()
	ctx := t.Context()
	seen := map[string]bool{}
	lister := js.ListStreams(ctx)
	for info := range lister.Info() {
		seen[info.Config.Name] = true
		peers := 0
		if info.Cluster != nil {
			peers = 1 + len(info.Cluster.Replicas)
		}
		if info.Config.Replicas != want || peers != want || info.Cluster.Leader == "" {
			t.Errorf("stream %s: %d replicas configured, %d peers (leader %q), want %d", info.Config.Name,
				info.Config.Replicas, peers, info.Cluster.Leader, want)
		}
		s, err := js.Stream(ctx, info.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		for ci := range s.ListConsumers(ctx).Info() {
			if ci.Cluster == nil || 1+len(ci.Cluster.Replicas) != want {
				t.Errorf("consumer %s of %s: cluster %+v, want %d replicas", ci.Name, info.Config.Name, ci.Cluster, want)
			}
		}
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range wantStreams {
		if !seen[name] {
			t.Errorf("stream %s missing; have %v", name, seen)
		}
	}
}

// pipelineStreams are the streams a pipeline of every worker creates: its own and one per bucket.
func pipelineStreams() []string {
	var out []string
	for _, b := range []string{"STATE", "LIMITS", "MARKS", "SESSIONS", "failures"} {
		out = append(out, "KV_KSEF_"+b)
	}
	return append(out, "KSEF")
}

// TestClusterEveryBucketReplicated: on a 3-node cluster with KSEF_NATS_REPLICAS=3, the stream,
// every KV bucket (state, limits, marks, sessions, failures) and every consumer of the pipeline
// has three replicas.
func TestClusterEveryBucketReplicated(t *testing.T) {
	c := testenv.StartNATSCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := provision(ctx, t, clusterSettings(t, c.URL(), 3), zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		pipeline.Workers()...); err != nil {
		t.Fatal(err)
	}
	_, js, err := natsx.Connect(ctx, natsx.Config{URL: c.URL()})
	if err != nil {
		t.Fatal(err)
	}
	checkReplicated(t, js, 3, pipelineStreams()...)
}

// provisionAll starts n workers' provisioning at the same moment and returns their errors.
func provisionAll(ctx context.Context, t *testing.T, n int, url string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Int("replica", i).Logger()
			// Each pair runs the sender and the poller, as two services/sender and two
			// services/poller would.
			workers := []string{pipeline.Sender, pipeline.Poller}
			errs[i] = provision(ctx, t, clusterSettings(t, url, 3), log, workers[i%2:i%2+1]...)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// TestClusterConcurrentProvisioning: four workers started at the same moment on a fresh 3-node
// cluster (the nodes just up, the meta leader maybe not elected yet) all provision the R3 stream,
// buckets and consumers and start.
func TestClusterConcurrentProvisioning(t *testing.T) {
	c := testenv.NewNATSCluster(t, 3)
	c.StartAll()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	provisionAndCheck(ctx, t, c)
}

// provisionAndCheck has four workers provision the pipeline on the cluster at once, and checks
// that each succeeded and that the stream and buckets have the cluster's three replicas.
func provisionAndCheck(ctx context.Context, t *testing.T, c *testenv.NATSCluster) {
	t.Helper()
	for i, err := range provisionAll(ctx, t, 4, c.URL()) {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	_, js, err := natsx.Connect(ctx, natsx.Config{URL: c.URL()})
	if err != nil {
		t.Fatal(err)
	}
	checkReplicated(t, js, 3, pipelineStreams()...)
}

// TestClusterProvisioningBeforeTheCluster: workers that start before any node of the cluster is
// up (so before there is a meta leader) wait, retrying, and start once the cluster forms.
func TestClusterProvisioningBeforeTheCluster(t *testing.T) {
	c := testenv.NewNATSCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	go func() {
		time.Sleep(2 * time.Second)
		// One node first: a cluster of one in three has no meta leader (no quorum)...
		if err := c.Start(0); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(2 * time.Second)
		// ...until a second and third join.
		for i := 1; i < c.Size(); i++ {
			if err := c.Start(i); err != nil {
				t.Error(err)
			}
		}
	}()
	provisionAndCheck(ctx, t, c)
}
