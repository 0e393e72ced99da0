// Command gen writes natsperm.Render("") to each file named by its arguments (the copy under
// deploy/k8s/base exists because kustomize reads no file outside its directory).
package main

import (
	"fmt"
	"os"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsperm"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gen FILE...")
		os.Exit(2)
	}
	for _, f := range os.Args[1:] {
		if err := os.WriteFile(f, []byte(natsperm.Render("")), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
