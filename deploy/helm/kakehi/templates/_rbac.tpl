{{/*
kakehi.namespacedRules are the RBAC rules for namespaced objects the
controller reads or writes; rbac.yaml puts them in the ClusterRole (all
namespaces) or in a Role in controller.watchNamespace. Each rule names the
code path that needs it.
*/}}
{{- define "kakehi.namespacedRules" -}}
# pkg/reconcile Controller and StatusWriter: cache informers.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["list", "watch"]
# pkg/reconcile StatusWriter.Reconcile: status.loadBalancer (merge patch).
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses/status"]
  verbs: ["patch"]
# pkg/reconcile Controller: backends; StatusWriter: the published Service.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch"]
# pkg/reconcile Controller: backend endpoints.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
# pkg/reconcile SecretWatcher: one single-name list/watch per TLS Secret
# referenced by an Ingress's spec.tls (no Secret is cached otherwise).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
# RoutePolicy: read by the reconciler, status written by the leader.
- apiGroups: ["kakehi.dev"]
  resources: ["routepolicies"]
  verbs: ["list", "watch"]
- apiGroups: ["kakehi.dev"]
  resources: ["routepolicies/status"]
  verbs: ["patch"]
{{- end -}}
