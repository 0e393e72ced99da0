package natsperm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// TestCommittedFileIsGenerated: deploy/nats/permissions.conf is Render's output, so the
// manifests, the compose file and the tests all use the one description.
func TestCommittedFileIsGenerated(t *testing.T) {
	for _, f := range []string{"deploy/nats/permissions.conf", "deploy/k8s/base/nats/permissions.conf"} {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != Render("") {
			t.Errorf("%s differs from natsperm.Render: run go generate ./internal/natsperm", f)
		}
	}
}

// TestRenderParses: nats-server's own parser reads the configuration, for a prefix too, and
// finds every user with the permissions described: workers never get a stream or consumer
// CREATE, UPDATE or DELETE on the pipeline's stream, and each user subscribes only to its inbox.
func TestRenderParses(t *testing.T) {
	for _, prefix := range []string{"", "acme"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			for _, u := range Users(prefix) {
				t.Setenv(strings.TrimPrefix(u.Password, "$"), "pw-"+u.Name)
			}
			f := filepath.Join(t.TempDir(), "perm.conf")
			if err := os.WriteFile(f, []byte(Render(prefix)), 0o600); err != nil {
				t.Fatal(err)
			}
			opts, err := server.ProcessConfigFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*server.User{}
			for _, u := range opts.Users {
				got[u.Username] = u
			}
			for _, u := range Users(prefix) {
				su := got[u.Name]
				if su == nil || su.Password != "pw-"+u.Name {
					t.Fatalf("user %s missing or without its password", u.Name)
				}
				if u.Name == Admin {
					if su.Permissions != nil {
						t.Error("admin is restricted")
					}
					continue
				}
				if su.Permissions == nil || su.Permissions.Subscribe == nil || len(su.Permissions.Subscribe.Allow) != 1 ||
					su.Permissions.Subscribe.Allow[0] != Inbox(u.Name)+".>" {
					t.Errorf("%s: subscribe %+v, want only its inbox", u.Name, su.Permissions)
				}
				if u.Name == ERP {
					continue
				}
				for _, p := range su.Permissions.Publish.Allow {
					for _, bad := range []string{".CREATE.", ".UPDATE.", ".DELETE.", ".PURGE."} {
						if strings.Contains(p, bad) && !strings.Contains(p, "KV_") {
							t.Errorf("%s may publish %s", u.Name, p)
						}
					}
					if strings.Contains(p, "STREAM.UPDATE") || strings.Contains(p, "STREAM.DELETE") || strings.Contains(p, "STREAM.CREATE") {
						t.Errorf("%s may publish %s", u.Name, p)
					}
				}
			}
		})
	}
}
