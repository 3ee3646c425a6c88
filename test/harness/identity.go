package harness

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Identity is a user of the test API server that authenticates exactly as a
// ServiceAccount's token would inside a cluster: the same user name and
// groups, so RBAC judges it as it would judge the pod. It is authenticated
// by a client certificate, so no token controller is needed.
type Identity struct {
	User       envtest.User
	Config     *rest.Config // shared: use RESTConfig for a copy to modify
	Kubeconfig string       // path of a kubeconfig file for this identity
}

// RESTConfig returns a copy of the identity's config, safe to modify.
func (id *Identity) RESTConfig() *rest.Config { return rest.CopyConfig(id.Config) }

// ServiceAccountUser returns the user name and groups a ServiceAccount
// authenticates with: system:serviceaccount:<ns>:<name> in the groups
// system:serviceaccounts, system:serviceaccounts:<ns> and
// system:authenticated.
func ServiceAccountUser(namespace, name string) envtest.User {
	return envtest.User{
		Name:   fmt.Sprintf("system:serviceaccount:%s:%s", namespace, name),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
}

// AsServiceAccount provisions a user on the running control plane that
// acts as the ServiceAccount namespace/name, and writes a kubeconfig for it
// beside the admin one (removed by Stop). Pass the kubeconfig to
// StartController to run the controller with only the permissions that the
// ServiceAccount's RBAC grants; the ServiceAccount object itself need not
// exist. The caller must call it after StartControlPlane.
func (cp *ControlPlane) AsServiceAccount(namespace, name string) (*Identity, error) {
	user := ServiceAccountUser(namespace, name)
	au, err := cp.Env.AddUser(user, nil)
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", user.Name, err)
	}
	kc, err := au.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig for %s: %w", user.Name, err)
	}
	f, err := os.CreateTemp(cp.dir, fmt.Sprintf("kubeconfig-sa-%s-%s-*", namespace, name))
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(kc); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &Identity{User: user, Config: au.Config(), Kubeconfig: filepath.Clean(f.Name())}, nil
}
