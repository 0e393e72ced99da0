package ksefconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSettingsFromEnv(t *testing.T) {
	files := map[string]string{"/t": "# tokens\n5261040828=file-token\n7740001454=other\n", "/swapped": "5261040828=ok\nsecret-value=7740001454\n"}
	readFile := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("no file %s", p)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, s Settings)
	}{
		{name: "defaults", env: map[string]string{}, check: func(t *testing.T, s Settings) {
			if s.APIURL != DefaultAPIURL || s.Limits != "production" || s.MaxLimitWait != 5*time.Second || len(s.Tokens) != 0 {
				t.Errorf("%+v", s)
			}
			table, _ := s.LimitTable()
			if table[ksef.OpInvoiceSend].PerHour != 180 {
				t.Errorf("production send limit %+v", table[ksef.OpInvoiceSend])
			}
		}},
		{name: "tokens from both places", env: map[string]string{EnvTokens: "1111111111=a", EnvTokensFile: "/t"}, check: func(t *testing.T, s Settings) {
			if s.Tokens["1111111111"] != "a" || s.Tokens["5261040828"] != "file-token" || len(s.Tokens) != 3 {
				t.Errorf("tokens %v", s.Tokens)
			}
		}},
		{name: "test limits are 10x", env: map[string]string{EnvLimits: "test", EnvLimitMultiplier: "2"}, check: func(t *testing.T, s Settings) {
			table, _ := s.LimitTable()
			if table[ksef.OpInvoiceSend].PerHour != 3600 {
				t.Errorf("send limit %+v, want 180*10*2 an hour", table[ksef.OpInvoiceSend])
			}
		}},
		{name: "limits off", env: map[string]string{EnvLimits: "off"}, check: func(t *testing.T, s Settings) {
			if table, err := s.LimitTable(); table != nil || err != nil {
				t.Errorf("%v %v", table, err)
			}
		}},
		{name: "bad limits", env: map[string]string{EnvLimits: "sometimes"}, wantErr: EnvLimits},
		{name: "bad headroom", env: map[string]string{EnvLimitHeadroom: "-1"}, wantErr: EnvLimitHeadroom},
		{name: "bad wait", env: map[string]string{EnvMaxLimitWait: "soon"}, wantErr: EnvMaxLimitWait},
		{name: "missing tokens file", env: map[string]string{EnvTokensFile: "/nope"}, wantErr: EnvTokensFile},
		{name: "bad token entry", env: map[string]string{EnvTokens: "123=secret-value"}, wantErr: "not a 10-digit NIP"},
		// The token written first: the NIP check must not echo what it found there.
		{name: "token=nip", env: map[string]string{EnvTokens: "secret-value=5261040828"}, wantErr: "entry 1"},
		{name: "token=nip in the file", env: map[string]string{EnvTokensFile: "/swapped"}, wantErr: "entry 2"},
		{name: "token without nip", env: map[string]string{EnvTokens: "5261040828=a,secret-value"}, wantErr: "entry 2"},
		{name: "upload hosts", env: map[string]string{EnvUploadHosts: " upload.ksef.example , blob.example:8443,"}, check: func(t *testing.T, s Settings) {
			if strings.Join(s.UploadHosts, "|") != "upload.ksef.example|blob.example:8443" {
				t.Errorf("upload hosts %q", s.UploadHosts)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := SettingsFromEnv(env(tc.env), readFile)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret-value") {
					t.Fatal("the error shows a token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestClientsPerContext(t *testing.T) {
	s := Settings{APIURL: "http://127.0.0.1:1", Tokens: Tokens{"5261040828": "tok"}, Limits: "production", LimitHeadroom: 1, LimitMultiplier: 1}
	c, err := NewClients(s, ratelimit.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.For(context.Background(), "5261040828")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.For(context.Background(), "5261040828")
	if a != b {
		t.Error("a context gets one client, reused")
	}
	if _, err := c.For(context.Background(), "7740001454"); !errors.Is(err, ErrUnknownContext) {
		t.Errorf("unknown context: %v", err)
	}
	if c.Limiter() == nil {
		t.Error("production limits need a limiter")
	}
	s.Limits = "off"
	c, _ = NewClients(s, nil)
	if c.Limiter() != nil {
		t.Error("limits off must not limit")
	}
	if !strings.Contains(fmt.Sprint(s.Tokens), "5261040828") || strings.Contains(fmt.Sprintf("%v %#v", s.Tokens, s.Tokens), "tok\"") {
		t.Errorf("tokens printed: %v", s.Tokens)
	}
}
