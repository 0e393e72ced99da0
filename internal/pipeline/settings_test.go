package pipeline

import (
	"os"
	"testing"
)

func TestSettingsWarningsAndProduction(t *testing.T) {
	tests := []struct {
		env        map[string]string
		block      bool
		production bool
		fail       bool
	}{
		{env: map[string]string{}},
		{env: map[string]string{EnvBlockOnWarnings: "true"}, block: true},
		{env: map[string]string{EnvBlockOnWarnings: "false"}},
		{env: map[string]string{EnvBlockOnWarnings: "maybe"}, fail: true},
		{env: map[string]string{EnvQREnvironment: "prod"}, production: true},
		{env: map[string]string{EnvQREnvironment: "test"}},
		{env: map[string]string{EnvQREnvironment: "https://qr.example"}},
	}
	for _, tt := range tests {
		s, err := SettingsFromEnv(func(k string) string { return tt.env[k] }, os.ReadFile)
		if (err != nil) != tt.fail {
			t.Errorf("%v: err = %v", tt.env, err)
			continue
		}
		if err == nil && (s.BlockOnWarnings != tt.block || s.Production() != tt.production) {
			t.Errorf("%v: block %v, production %v", tt.env, s.BlockOnWarnings, s.Production())
		}
	}
}
