package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of every kind in this package.
const GroupName = "kakehi.dev"

// GroupVersion is kakehi.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// RoutePolicyResource is the resource of RoutePolicy, for RBAC rules and
// discovery ("routepolicies").
var RoutePolicyResource = GroupVersion.WithResource("routepolicies")

var (
	// SchemeBuilder registers this package's kinds with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds RoutePolicy and RoutePolicyList to a scheme. Call it
	// alongside client-go's scheme.AddToScheme before building clients or
	// a manager that read RoutePolicies.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &RoutePolicy{}, &RoutePolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
