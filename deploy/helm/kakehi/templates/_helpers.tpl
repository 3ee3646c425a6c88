{{/*
kakehi.name is the chart name, or nameOverride.
*/}}
{{- define "kakehi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
kakehi.fullname names every object of the release: fullnameOverride, else
the release name when it already contains the chart name, else
"<release>-<chart>"; at most 63 characters.
*/}}
{{- define "kakehi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
kakehi.selectorLabels select the controller's pods; they never change
across upgrades.
*/}}
{{- define "kakehi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kakehi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{/*
kakehi.labels are on every object.
*/}}
{{- define "kakehi.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kakehi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kakehi
{{- end -}}

{{/*
kakehi.serviceAccountName is the ServiceAccount the pods run as.
*/}}
{{- define "kakehi.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kakehi.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
kakehi.leaseNamespace is where the leader-election Lease lives.
*/}}
{{- define "kakehi.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace -}}
{{- end -}}

{{/*
kakehi.leaseName is the Lease's name; it must match the controller's
("kakehi-" + --ingress-class, pkg/reconcile Leader).
*/}}
{{- define "kakehi.leaseName" -}}
{{- printf "kakehi-%s" .Values.ingressClass.name -}}
{{- end -}}

{{/*
kakehi.image is repository@digest, else repository:tag (tag defaulting to
appVersion).
*/}}
{{- define "kakehi.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
kakehi.terminationGracePeriod is the pod's grace period: the explicit value,
which must cover preStop + shutdown delay + grace, or that sum plus a margin.
*/}}
{{- define "kakehi.terminationGracePeriod" -}}
{{- $s := .Values.shutdown -}}
{{- $need := add $s.preStopSleepSeconds $s.delaySeconds $s.graceSeconds -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $need $s.marginSeconds -}}
{{- else -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $need) -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) is shorter than shutdown.preStopSleepSeconds + delaySeconds + graceSeconds (%v): the kubelet would kill the controller while requests drain" .Values.terminationGracePeriodSeconds $need) -}}
{{- end -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
kakehi.defaultTLS splits controller.defaultTLSSecret into a dict with
namespace and name (empty when unset).
*/}}
{{- define "kakehi.defaultTLS" -}}
{{- $parts := splitList "/" .Values.controller.defaultTLSSecret -}}
{{- if eq (len $parts) 2 -}}
namespace: {{ index $parts 0 | quote }}
name: {{ index $parts 1 | quote }}
{{- end -}}
{{- end -}}
