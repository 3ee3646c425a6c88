// Package v1alpha1 holds the kakehi.dev/v1alpha1 API: RoutePolicy, typed
// per-Ingress settings for timeouts, retries, load balancing, session
// affinity, body size and backend protocol.
//
// Every field is validated by the API server itself (OpenAPI and CEL rules
// in the generated CRD, config/crd), so a value that reaches the controller
// is well-formed; the controller still parses each one with one function
// (Duration.Parse and friends) and never templates a string into
// configuration.
//
// Run `make generate` after changing these types: it regenerates
// zz_generated.deepcopy.go and config/crd with controller-gen.
//
// +kubebuilder:object:generate=true
// +groupName=kakehi.dev
package v1alpha1
