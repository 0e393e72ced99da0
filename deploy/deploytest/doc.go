// Package deploytest validates the deployment artifacts of ksef-pipeline in
// go test, without a cluster, a Docker engine or the network:
//
//   - deploy/k8s: each overlay is rendered with kustomize's Go API, every
//     object is decoded strictly (unknown, duplicate or miscased fields
//     fail, as with kube-apiserver's strict field validation) into its
//     k8s.io/api type (KEDA's ScaledObject into a minimal local type), and
//     semantic checks run over the result: probes, resources, the
//     restricted pod security profile, disruption budgets, references
//     between objects, network reachability under the NetworkPolicies,
//     KEDA triggers against the stream name natsx uses, the NATS
//     configuration through nats-server's own parser (users with
//     passwords, TLS for clients and routes), and the workers' settings
//     through natsx's and storage's own ConfigFromEnv.
//   - docker-compose.yml: loaded with compose-go with schema validation,
//     then checked for healthchecks, depends_on conditions, buckets and
//     settings (again through ConfigFromEnv), and NATS as in Kubernetes:
//     users and client TLS, its certificates made before it starts, every
//     client on tls:// with the CA and never the server's key.
//   - Dockerfile and .dockerignore: the build and runtime choices the
//     images rely on, and the shared-library collection for the distroless
//     runtime image (run in a chroot when the machine allows).
//
// Tests in broken_test.go break copies of the artifacts and assert that
// the validation fails, so an invalid manifest cannot pass CI unnoticed.
//
// Everything lives in _test.go files: the heavy dependencies (kustomize,
// k8s.io/api, compose-go) are compiled for go test and go vet only, never
// into a binary.
package deploytest
