// Package buildinfo gives every binary of ksef-pipeline its --version: the module version and
// the VCS revision that the Go toolchain records in the binary (runtime/debug.ReadBuildInfo).
//
// Each main's run() starts with
//
//	if buildinfo.Requested(args[1:]) {
//		return buildinfo.Print(stdout, "sender")
//	}
//
// The toolchain records the revision only when it builds inside a git checkout with VCS
// stamping on (the default; -buildvcs=false or GOFLAGS=-buildvcs=false turns it off, and a
// build from a copy without .git has none to record); the version is "(devel)" for a build of
// the local source tree unless the toolchain stamped one from a tag, and the module's tag for
// `go install module/cmd@version`. Whatever is missing is printed as "unknown".
package buildinfo

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// Info is what a binary knows about its build.
type Info struct {
	Path      string // the main module's path
	Version   string // the main module's version, "(devel)" for a local build
	Revision  string // vcs.revision, "" when not recorded
	Time      string // vcs.time (RFC 3339), "" when not recorded
	Modified  bool   // vcs.modified: the work tree had uncommitted changes
	GoVersion string // the toolchain that built the binary
}

// Read returns the running binary's build information.
func Read() Info { return FromBuildInfo(debug.ReadBuildInfo()) }

// FromBuildInfo extracts Info from what debug.ReadBuildInfo returned.
func FromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	if !ok || bi == nil {
		return Info{}
	}
	i := Info{Path: bi.Main.Path, Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the one line --version prints, e.g.
//
//	sender (devel) revision 3f2a9c1d0e7b, 2026-12-07T21:50:00Z, modified; go1.26.8; github.com/ksef-pipeline/ksef-pipeline
func (i Info) String(name string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(orUnknown(i.Version))
	b.WriteString(" revision ")
	b.WriteString(orUnknown(i.Revision))
	if i.Time != "" {
		b.WriteString(", " + i.Time)
	}
	if i.Modified {
		b.WriteString(", modified")
	}
	b.WriteString("; " + orUnknown(i.GoVersion))
	if i.Path != "" {
		b.WriteString("; " + i.Path)
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Requested reports whether a command's arguments (after its name) ask only for the version:
// exactly one argument, --version or -version.
func Requested(args []string) bool {
	return len(args) == 1 && (args[0] == "--version" || args[0] == "-version")
}

// Print writes the running binary's version line for the command name, and a newline.
func Print(w io.Writer, name string) error {
	_, err := fmt.Fprintln(w, Read().String(name))
	return err
}
