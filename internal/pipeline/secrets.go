package pipeline

import (
	"slices"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
)

// CallsKSeF reports whether the named worker calls the KSeF API and so needs the contexts'
// tokens. The visualizer renders locally: it gets no token and opens no KSeF client, so that a
// flaw in rendering third-party content cannot reach them.
func CallsKSeF(name string) bool { return workers()[name].ksef }

// tokenEnv are the settings that carry KSeF tokens.
var tokenEnv = []string{ksefconn.EnvTokens, ksefconn.EnvTokensFile}

// WorkerEnv is getenv as the named worker's service may see it: for a worker that calls no KSeF
// API, the token settings read as unset (so the token file is never opened). It also returns the
// names of the settings it hid that were set, for a warning.
func WorkerEnv(name string, getenv func(string) string) (func(string) string, []string) {
	if CallsKSeF(name) {
		return getenv, nil
	}
	var hidden []string
	for _, k := range tokenEnv {
		if getenv(k) != "" {
			hidden = append(hidden, k)
		}
	}
	return func(k string) string {
		if slices.Contains(tokenEnv, k) {
			return ""
		}
		return getenv(k)
	}, hidden
}
