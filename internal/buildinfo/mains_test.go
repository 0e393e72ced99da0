package buildinfo_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// tools are main packages that are not shipped as binaries: a go:generate step and the
// generator of the documentation images, both run with `go run`.
var tools = map[string]bool{
	"internal/natsperm/gen":              true,
	"pkg/visualize/internal/cmd/samples": true,
}

// TestEveryMainAnswersVersion finds every main package of the repository (the nested modules
// too) and checks that its run() asks buildinfo first, so each binary answers --version.
func TestEveryMainAnswersVersion(t *testing.T) {
	root := testenv.RepoRoot(t)
	mains := map[string]bool{} // directory -> run() calls buildinfo.Requested
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name != "main" {
			return nil
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		mains[dir] = mains[dir] || runAsksVersion(f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(mains) < 10 {
		t.Fatalf("found only %d main packages: %v", len(mains), mains)
	}
	for dir, ok := range mains {
		if !ok && !tools[filepath.ToSlash(dir)] {
			t.Errorf("%s: run() does not answer --version (buildinfo.Requested)", dir)
		}
	}
}

// runAsksVersion reports whether f's run function calls buildinfo.Requested.
func runAsksVersion(f *ast.File) bool {
	found := false
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "run" || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Requested" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "buildinfo" {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// TestBuiltBinary builds the smallest binary (healthprobe) with VCS stamping on (-buildvcs=true
// overrides a GOFLAGS=-buildvcs=false), in this clone, and runs it with --version: it names the
// revision git has checked out.
func TestBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	root := testenv.RepoRoot(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		// A linked worktree has a .git file, and the go command records no revision there.
		t.Skip("not a git clone with a .git directory")
	}
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "healthprobe")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./deploy/docker/healthprobe")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("healthprobe --version: %v", err)
	}
	want := "healthprobe "
	if !bytes.HasPrefix(out, []byte(want)) || !bytes.Contains(out, []byte(" revision "+strings.TrimSpace(string(head)))) {
		t.Fatalf("healthprobe --version printed %q, want %q… with revision %s", out, want, head)
	}
	if !bytes.Contains(out, []byte("github.com/ksef-pipeline/ksef-pipeline")) {
		t.Errorf("no module path in %q", out)
	}
}
