package deploytest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// dockerfile is the Dockerfile as instructions: continuation lines joined,
// comments dropped.
type dockerfile []instruction

type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

func parseDockerfile(t testing.TB, file string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var df dockerfile
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if l, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		df = append(df, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return df
}

// stages splits the Dockerfile at its FROM lines.
func (df dockerfile) stages() []dockerfile {
	var st []dockerfile
	for _, in := range df {
		if in.cmd == "FROM" {
			st = append(st, nil)
		}
		if len(st) > 0 {
			st[len(st)-1] = append(st[len(st)-1], in)
		}
	}
	return st
}

func (df dockerfile) all(cmd string) []string {
	var out []string
	for _, in := range df {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// serviceCase matches the Dockerfile's mapping of SERVICE to a package:
// `sender|poller) pkg="./services/${SERVICE}" ;;`.
var serviceCase = regexp.MustCompile(`([a-z|-]+)\)\s*pkg="\./(services|cmd)/\$\{SERVICE\}"`)

// dockerfileServices lists the SERVICE values the Dockerfile builds, each
// with its package directory.
func dockerfileServiceDirs(t testing.TB, root string) map[string]string {
	t.Helper()
	dirs := map[string]string{}
	for _, run := range parseDockerfile(t, filepath.Join(root, "Dockerfile")).all("RUN") {
		for _, m := range serviceCase.FindAllStringSubmatch(run, -1) {
			for _, name := range strings.Split(m[1], "|") {
				dirs[name] = m[2] + "/" + name
			}
		}
	}
	if len(dirs) == 0 {
		t.Fatal("Dockerfile: no SERVICE case found")
	}
	return dirs
}

func dockerfileServices(t testing.TB, root string) []string {
	return sortedKeys(dockerfileServiceDirs(t, root))
}

func TestDockerfile(t *testing.T) {
	root := testenv.RepoRoot(t)
	df := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	st := df.stages()
	if len(st) != 2 {
		t.Fatalf("want a build and a runtime stage, got %d stages", len(st))
	}
	build, runtime := st[0], st[1]

	// The build image's Go is the one go.mod asks for.
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	goMinor := strings.Join(strings.SplitN(mf.Go.Version, ".", 3)[:2], ".")
	if !slices.Contains(df.all("ARG"), "GO_VERSION="+goMinor) {
		t.Errorf("Dockerfile: ARG GO_VERSION must be %s (go.mod says go %s)", goMinor, mf.Go.Version)
	}
	if from := build[0].args; !strings.HasPrefix(from, "golang:${GO_VERSION}-bookworm ") {
		t.Errorf("build stage FROM %q, want golang:${GO_VERSION}-bookworm", from)
	}
	runs := strings.Join(build.all("RUN"), "\n")
	for _, want := range []string{"libxml2-dev", "CGO_ENABLED=1 go build -trimpath -ldflags=\"-s -w\"", "collect-libs.sh /out/app /out/lib"} {
		if !strings.Contains(runs, want) {
			t.Errorf("build stage does not run %q", want)
		}
	}

	// Runtime: Debian 12 like the build stage (the copied libraries need
	// its glibc), non-root, the probe and the libraries where ENV says.
	if from := runtime[0].args; !strings.HasPrefix(from, "gcr.io/distroless/base-debian12") {
		t.Errorf("runtime stage FROM %q, want gcr.io/distroless/base-debian12 (glibc of bookworm)", from)
	}
	if u := runtime.all("USER"); len(u) != 1 || u[0] != "65532:65532" {
		t.Errorf("runtime USER %v, want 65532:65532", u)
	}
	copies := strings.Join(runtime.all("COPY"), "\n")
	env := strings.Join(runtime.all("ENV"), " ")
	for _, want := range []struct{ copy, env string }{
		{"/out/lib/ /usr/local/lib/ksef/", "LD_LIBRARY_PATH=/usr/local/lib/ksef"},
		{"/out/healthprobe " + healthprobePath, ""},
		{"/out/app /usr/local/bin/app", ""},
	} {
		if !strings.Contains(copies, want.copy) {
			t.Errorf("runtime stage does not COPY %s", want.copy)
		}
		if !strings.Contains(env, want.env) {
			t.Errorf("runtime stage ENV lacks %s", want.env)
		}
	}
	if hc := runtime.all("HEALTHCHECK"); len(hc) != 1 || !strings.Contains(hc[0], `CMD ["`+healthprobePath+`"]`) {
		t.Errorf("runtime HEALTHCHECK %v must exec %s", hc, healthprobePath)
	}
	if ep := runtime.all("ENTRYPOINT"); len(ep) != 1 || ep[0] != `["/usr/local/bin/app"]` {
		t.Errorf("runtime ENTRYPOINT %v", ep)
	}

	// Every SERVICE maps to a main package (those still being written are
	// skipped, not passed).
	for name, dir := range dockerfileServiceDirs(t, root) {
		t.Run(name, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(root, dir))
			if err != nil {
				t.Skipf("%s is not written yet", dir)
			}
			if !fi.IsDir() {
				t.Fatalf("%s is not a directory", dir)
			}
			cmd := exec.Command("go", "list", "-f", "{{.Name}}", "./"+dir)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "main" {
				t.Errorf("%s is not a main package: %s %v", dir, out, err)
			}
		})
	}
}

// TestImagesBuilt: every image of ours that compose or Kubernetes runs is
// one the Dockerfile builds.
func TestImagesBuilt(t *testing.T) {
	root := testenv.RepoRoot(t)
	built := dockerfileServices(t, root)
	for _, o := range overlays {
		m, err := render(filepath.Join(k8sDir(t), "overlays", o.name))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range m.workloads() {
			for _, c := range w.spec.Containers {
				repo, _, _ := strings.Cut(c.Image, ":")
				if i := strings.Index(repo, "ksef-pipeline/"); i >= 0 && !slices.Contains(built, repo[i+len("ksef-pipeline/"):]) {
					t.Errorf("%s: %s %s runs %s, which the Dockerfile does not build", o.name, w.id(), c.Name, c.Image)
				}
			}
		}
	}
}

// dockerignored reports whether .dockerignore patterns exclude path (as
// Docker matches them: the last matching pattern wins, "!" re-includes, a
// pattern matching a directory excludes what is under it, "**" spans
// directories).
func dockerignored(patterns []string, path string) bool {
	excluded := false
	for _, pat := range patterns {
		neg := strings.HasPrefix(pat, "!")
		re := ignoreRegexp(strings.TrimPrefix(pat, "!"))
		parts := strings.Split(path, "/")
		for i := 1; i <= len(parts); i++ {
			if re.MatchString(strings.Join(parts[:i], "/")) {
				excluded = !neg
				break
			}
		}
	}
	return excluded
}

func ignoreRegexp(pat string) *regexp.Regexp {
	pat = strings.Trim(filepath.ToSlash(filepath.Clean(pat)), "/")
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case strings.HasPrefix(pat[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(pat[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func TestDockerignore(t *testing.T) {
	root := testenv.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	// The build needs these; the matcher itself is checked by the
	// excluded ones.
	for _, p := range []string{
		"go.mod", "go.sum", "deploy/docker/collect-libs.sh", "deploy/docker/healthprobe/main.go",
		"pkg/fa3/libxml.go", "internal/natsx/config.go", "services/sender/main.go", "cmd/ksef-emulator/main.go",
	} {
		if dockerignored(patterns, p) {
			t.Errorf(".dockerignore excludes %s, which the build needs", p)
		}
	}
	for _, p := range []string{".git/config", "pkg/fa3/validator_test.go", "deploy/k8s/base/nats.yaml", "deploy/compose/tokens.txt", "secrets/ksef.creds"} {
		if !dockerignored(patterns, p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

// TestCollectLibs builds a small cgo program linking libxml2, collects its
// libraries with the Dockerfile's script and runs it in a chroot holding
// only glibc and the collected libraries, as the distroless image does.
func TestCollectLibs(t *testing.T) {
	for _, tool := range []string{"ldd", "pkg-config", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not available", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	if err := exec.Command("pkg-config", "--exists", "libxml-2.0").Run(); err != nil {
		t.Skip("libxml2 development files not installed")
	}
	root := testenv.RepoRoot(t)
	src := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(src, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module probe\n\ngo 1.26\n")
	write("main.go", `package main

/*
#cgo pkg-config: libxml-2.0
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
*/
import "C"

import "fmt"

func main() {
	C.xmlInitParser()
	fmt.Println("libxml2", C.GoString(C.xmlParserVersion))
}
`)
	bin := filepath.Join(src, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	rootfs := t.TempDir()
	libs := filepath.Join(rootfs, "usr/local/lib/ksef")
	if out, err := exec.Command("sh", filepath.Join(root, "deploy/docker/collect-libs.sh"), bin, libs).CombinedOutput(); err != nil {
		t.Fatalf("collect-libs.sh: %v\n%s", err, out)
	}
	collected, err := os.ReadDir(libs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range collected {
		names = append(names, e.Name())
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "libxml2.so") }) {
		t.Fatalf("libxml2 not collected: %v", names)
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "libc.so") }) {
		t.Fatalf("glibc collected (the runtime image has its own): %v", names)
	}

	// The rootfs: glibc's files (as ldd resolves them) and the binary.
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		base := filepath.Base(f)
		if !strings.HasPrefix(f, "/") || !(strings.HasPrefix(base, "libc.so") || strings.HasPrefix(base, "libm.so") || strings.HasPrefix(base, "ld-linux")) {
			continue
		}
		copyFile(t, f, filepath.Join(rootfs, f))
	}
	copyFile(t, bin, filepath.Join(rootfs, "app"))

	run := func(env ...string) ([]byte, error) {
		c := exec.Command("chroot", rootfs, "/app")
		c.Env = env
		return c.CombinedOutput()
	}
	if out, err := run("LD_LIBRARY_PATH=/usr/local/lib/ksef"); err != nil || !strings.HasPrefix(string(out), "libxml2 ") {
		t.Fatalf("in the minimal root: %v\n%s", err, out)
	}
	// Without the Dockerfile's LD_LIBRARY_PATH the loader must fail: the
	// libraries found above came from the collected directory.
	if out, err := run(); err == nil {
		t.Fatalf("ran without LD_LIBRARY_PATH: %s", out)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
