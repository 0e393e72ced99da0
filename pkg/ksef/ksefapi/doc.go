// Package ksefapi holds the KSeF REST API 2.0 contract (openapi.yaml) and the Go types, HTTP client
// and strict server interface generated from it. Do not edit ksefapi.gen.go; change openapi.yaml and
// run `go generate ./pkg/ksef/...`.
package ksefapi

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config cfg.yaml openapi.yaml

import _ "embed"

// Spec is the OpenAPI document, served by the emulator.
//
//go:embed openapi.yaml
var Spec []byte
