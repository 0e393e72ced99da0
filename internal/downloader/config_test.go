package downloader

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

func TestSettingsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, s Settings)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, s Settings) {
				if s.Concurrency != DefaultConcurrency || s.Parallelism != DefaultParallelism || s.PollBudget != DefaultPollBudget ||
					s.Layout.Buckets != storage.DefaultBuckets() || s.TempDir == "" {
					t.Errorf("defaults: %+v", s)
				}
			},
		},
		{
			name: "everything set",
			env: map[string]string{
				EnvTempDir: "/var/tmp/dl", EnvConcurrency: "5", EnvParallelism: "8", EnvPollInterval: "2s",
				EnvPollMaxInterval: "1m", EnvPollBudget: "5m", EnvOverlap: "0s", EnvMaxInvoiceSize: "1048576", EnvMaxPartSize: "2097152",
				storage.EnvBucketInvoices: "inv-bucket",
			},
			check: func(t *testing.T, s Settings) {
				if s.TempDir != "/var/tmp/dl" || s.Concurrency != 5 || s.Parallelism != 8 || s.PollInterval != 2*time.Second ||
					s.PollMaxInterval != time.Minute || s.PollBudget != 5*time.Minute || s.MaxInvoiceSize != 1<<20 || s.MaxPartSize != 2<<20 ||
					s.Layout.Buckets.Invoices != "inv-bucket" {
					t.Errorf("settings: %+v", s)
				}
				if s.Overlap != 0 {
					t.Errorf("overlap set to 0s is %s, want none", s.Overlap)
				}
			},
		},
		{name: "bad duration", env: map[string]string{EnvPollBudget: "later"}, wantErr: EnvPollBudget},
		{name: "bad number", env: map[string]string{EnvConcurrency: "many"}, wantErr: EnvConcurrency},
		{name: "zero concurrency", env: map[string]string{EnvConcurrency: "0"}, wantErr: "concurrency"},
		{name: "max interval below interval", env: map[string]string{EnvPollInterval: "1m", EnvPollMaxInterval: "1s"}, wantErr: "max >= interval"},
		{name: "bad bucket", env: map[string]string{storage.EnvBucketQueryParts: "Bad_Bucket"}, wantErr: storage.EnvBucketQueryParts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SettingsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one about %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestValidateRanges(t *testing.T) {
	now := day.Add(200 * 24 * time.Hour)
	tests := []struct {
		name        string
		from, to    time.Time
		incremental bool
		ok          bool
	}{
		{"one day", day, day.Add(24 * time.Hour), false, true},
		{"exactly three months", day, day.AddDate(0, 3, 0), false, true},
		{"three months and a second", day, day.AddDate(0, 3, 0).Add(time.Second), false, false},
		{"to defaults to now, too long", day, time.Time{}, false, false},
		{"to defaults to now, incremental spans windows", day, time.Time{}, true, true},
		{"to before from", day.Add(time.Hour), day, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &events.QueryRequested{Meta: events.Meta{ContextNIP: buyerNIP}, QueryID: "v", SubjectType: events.SubjectSeller,
				From: events.At(tt.from), Incremental: tt.incremental}
			if !tt.to.IsZero() {
				req.To = events.At(tt.to)
			}
			err := validate(req, now)
			var re *RequestError
			if tt.ok != (err == nil) || (err != nil && !errors.As(err, &re)) {
				t.Errorf("validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want func(error) bool
	}{
		{"success acks", nil, func(err error) bool { return err == nil }},
		{"request error dead-letters", fmt.Errorf("x: %w", &RequestError{QueryID: "q", Reason: "bad"}), func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "bad") && fmt.Sprintf("%T", err) == fmt.Sprintf("%T", worker.Permanent(errBoom))
		}},
		{"snooze snoozes", &SnoozeError{After: time.Minute, Reason: "not ready"}, func(err error) bool {
			return err != nil && err.Error() == worker.Snooze(time.Minute).Error()
		}},
		{"other errors retry", errBoom, func(err error) bool { return errors.Is(err, errBoom) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Outcome(tt.err); !tt.want(got) {
				t.Errorf("Outcome(%v) = %T %v", tt.err, got, got)
			}
		})
	}
}
