// Command gen writes natsperm.Render("") to the file named by its argument.
package main

import (
	"fmt"
	"os"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsperm"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], []byte(natsperm.Render("")), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
