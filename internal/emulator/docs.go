package emulator

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// The docs page is rendered from the embedded contract once, without anything fetched from a
// CDN: operations with their parameters, bodies and answers, then every schema.

type docsPage struct {
	Title, Version, Description string
	Ops                         []docsOp
	Schemas                     []docsSchema
}

type docsOp struct {
	Method, Path, ID, Summary, Description string
	Public                                 bool
	Params                                 []docsField
	Body                                   []docsMedia
	Responses                              []docsResponse
}

type docsMedia struct{ Type, Schema string }

type docsResponse struct {
	Status, Description string
	Media               []docsMedia
}

type docsField struct {
	Name, Type, Description string
	Required                bool
}

type docsSchema struct {
	Name, Type, Description string
	Enum                    []string
	Fields                  []docsField
}

var (
	docsOnce sync.Once
	docsHTML []byte
	docsErr  error
)

func (e *Emulator) handleDocs(w http.ResponseWriter, _ *http.Request) {
	docsOnce.Do(func() { docsHTML, docsErr = renderDocs() })
	if docsErr != nil {
		http.Error(w, "docs unavailable: "+docsErr.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(docsHTML)
}

func renderDocs() ([]byte, error) {
	// The served contract itself, not the generator's normalised copy.
	spec, err := openapi3.NewLoader().LoadFromData(ksefapi.Spec)
	if err != nil {
		return nil, err
	}
	page := docsPage{Title: spec.Info.Title, Version: spec.Info.Version, Description: spec.Info.Description}
	for _, path := range spec.Paths.InMatchingOrder() {
		item := spec.Paths.Value(path)
		for method, op := range item.Operations() {
			d := docsOp{
				Method: method, Path: path, ID: op.OperationID, Summary: op.Summary, Description: op.Description,
				Public: op.Security != nil && len(*op.Security) == 0,
			}
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value == nil {
					continue
				}
				d.Params = append(d.Params, docsField{Name: p.Value.In + " " + p.Value.Name, Type: schemaType(p.Value.Schema), Description: p.Value.Description, Required: p.Value.Required})
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				d.Body = media(op.RequestBody.Value.Content)
			}
			for _, code := range sortedKeys(op.Responses.Map()) {
				r := op.Responses.Value(code)
				if r.Value == nil {
					continue
				}
				desc := ""
				if r.Value.Description != nil {
					desc = *r.Value.Description
				}
				d.Responses = append(d.Responses, docsResponse{Status: code, Description: desc, Media: media(r.Value.Content)})
			}
			page.Ops = append(page.Ops, d)
		}
	}
	slices.SortStableFunc(page.Ops, func(a, b docsOp) int { return strings.Compare(a.Path+a.Method, b.Path+b.Method) })
	for _, name := range sortedKeys(spec.Components.Schemas) {
		s := spec.Components.Schemas[name].Value
		ds := docsSchema{Name: name, Type: schemaType(spec.Components.Schemas[name]), Description: s.Description}
		for _, v := range s.Enum {
			ds.Enum = append(ds.Enum, fmt.Sprint(v))
		}
		for _, f := range sortedKeys(s.Properties) {
			p := s.Properties[f]
			desc := ""
			if p.Value != nil {
				desc = p.Value.Description
			}
			ds.Fields = append(ds.Fields, docsField{Name: f, Type: schemaType(p), Description: desc, Required: slices.Contains(s.Required, f)})
		}
		page.Schemas = append(page.Schemas, ds)
	}
	var buf bytes.Buffer
	if err := docsTemplate.Execute(&buf, page); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func media(c openapi3.Content) []docsMedia {
	var out []docsMedia
	for _, t := range sortedKeys(c) {
		out = append(out, docsMedia{Type: t, Schema: schemaType(c[t].Schema)})
	}
	return out
}

// schemaType names a schema: its component name when it is a reference, else its type.
func schemaType(r *openapi3.SchemaRef) string {
	if r == nil {
		return ""
	}
	if r.Ref != "" {
		return r.Ref[strings.LastIndex(r.Ref, "/")+1:]
	}
	s := r.Value
	if s == nil || s.Type == nil {
		return "object"
	}
	t := strings.Join(s.Type.Slice(), "|")
	switch {
	case t == "array":
		return "[]" + schemaType(s.Items)
	case s.Format != "":
		return t + " (" + s.Format + ")"
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}} — ksef-emulator</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:0;color:#222}
header{background:#1f3b63;color:#fff;padding:16px 32px}
main{display:flex}
nav{width:280px;padding:16px;border-right:1px solid #ddd;position:sticky;top:0;height:100vh;overflow:auto;font-size:13px}
nav a{display:block;color:#1f3b63;text-decoration:none;padding:2px 0}
section{flex:1;padding:16px 32px;max-width:1000px}
.op{border:1px solid #ddd;border-radius:6px;margin:16px 0;padding:8px 16px}
.m{display:inline-block;min-width:52px;text-align:center;color:#fff;border-radius:4px;padding:0 6px;font-weight:bold;font-size:12px}
.GET{background:#2f7d32}.POST{background:#1565c0}.PUT{background:#a65e00}
code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;margin:8px 0;width:100%}
td,th{border:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}
.desc{white-space:pre-wrap}
.req{color:#b00}
</style></head><body>
<header><h1>{{.Title}} <small>v{{.Version}}</small></h1><div>Served by ksef-emulator. Raw contract: <a style="color:#fff" href="/openapi.yaml">/openapi.yaml</a></div></header>
<main><nav><b>Operations</b>{{range .Ops}}<a href="#{{.ID}}">{{.ID}}</a>{{end}}
<b>Emulator</b><a href="#emulator">uploads, stats, health</a>
<b>Schemas</b>{{range .Schemas}}<a href="#schema-{{.Name}}">{{.Name}}</a>{{end}}</nav>
<section><div class="desc">{{.Description}}</div>
<h2>Operations</h2>
{{range .Ops}}<div class="op" id="{{.ID}}"><h3><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code> — {{.ID}}</h3>
<p>{{.Summary}}{{if .Public}} <i>(no authorization)</i>{{end}}</p>{{if .Description}}<div class="desc">{{.Description}}</div>{{end}}
{{if .Params}}<table><tr><th>parameter</th><th>type</th><th>description</th></tr>{{range .Params}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">*</span>{{end}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Body}}<p>Request body: {{range .Body}}<code>{{.Type}}</code> <a href="#schema-{{.Schema}}">{{.Schema}}</a> {{end}}</p>{{end}}
<table><tr><th>answer</th><th>description</th><th>content</th></tr>{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}</td><td>{{range .Media}}<code>{{.Type}}</code> <a href="#schema-{{.Schema}}">{{.Schema}}</a><br>{{end}}</td></tr>{{end}}</table></div>
{{end}}
<h2 id="emulator">Emulator endpoints</h2>
<div class="op"><h3><span class="m PUT">PUT</span> <code>/upload/{sessionId}/{ordinal}</code></h3><p>Batch part upload, as the URLs of <code>partUploadRequests</code> say: the encrypted part as the body, with the <code>X-KSeF-Upload-Token</code> header given. 201 stored; 400 size or hash differ from the declaration; 401 wrong upload token; 403 session closed or upload window over. Not limited.</p></div>
<div class="op"><h3><span class="m GET">GET</span> <code>/emulator/stats</code></h3><p>Counters for tests and benchmarks: answers per operation and HTTP status, 429s returned, injected faults, invoice outcomes, sends per invoice (seller NIP|P_2|SHA-256).</p></div>
<div class="op"><h3><span class="m GET">GET</span> <code>/healthz</code>, <code>/openapi.yaml</code>, <code>/docs</code></h3><p>Liveness, the contract, this page.</p></div>
<h2>Schemas</h2>
{{range .Schemas}}<div class="op" id="schema-{{.Name}}"><h3>{{.Name}} <small>{{.Type}}</small></h3>{{if .Description}}<div class="desc">{{.Description}}</div>{{end}}
{{if .Enum}}<p>Values: {{range .Enum}}<code>{{.}}</code> {{end}}</p>{{end}}
{{if .Fields}}<table><tr><th>field</th><th>type</th><th>description</th></tr>{{range .Fields}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">*</span>{{end}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}</div>
{{end}}
</section></main></body></html>
`))
