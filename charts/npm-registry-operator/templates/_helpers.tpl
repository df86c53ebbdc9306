{{/* Chart name, truncated to the 63 characters a label value may hold. */}}
{{- define "npm-registry-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed to the chart name unless it already contains it. */}}
{{- define "npm-registry-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "npm-registry-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "npm-registry-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "npm-registry-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "npm-registry-operator.labels" -}}
helm.sh/chart: {{ include "npm-registry-operator.chart" . }}
{{ include "npm-registry-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: npm-registry
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "npm-registry-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "npm-registry-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "npm-registry-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when the operator runs with leader election (several replicas, or asked for). */}}
{{- define "npm-registry-operator.leaderElection" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.leaderElection.always }}true{{ end }}
{{- end }}

{{- define "npm-registry-operator.leaseName" -}}
{{- default (include "npm-registry-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The namespace the operator watches; empty means all namespaces. */}}
{{- define "npm-registry-operator.watchNamespace" -}}
{{- if .Values.watchNamespace }}
{{- .Values.watchNamespace }}
{{- else if .Values.rbac.namespaced }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
The operator's rules, the same as config/rbac/role.yaml (e2e/tests/manifests.rs checks that they
stay equal). Exactly the calls the operator makes: no wildcards, no Secrets.
*/}}
{{- define "npm-registry-operator.rules" -}}
# Watch NpmRegistries and write their status; the operator never writes spec.
- apiGroups: [npmregistry.dev]
  resources: [npmregistries]
  verbs: [get, list, watch]
- apiGroups: [npmregistry.dev]
  resources: [npmregistries/status]
  verbs: [patch]
# Children applied with server-side apply; owner references let the garbage collector delete them.
- apiGroups: [""]
  resources: [configmaps, services, serviceaccounts, persistentvolumeclaims]
  verbs: [get, list, watch, create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# Optional children, deleted when the spec no longer asks for them.
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
# The server pods, read for status (why they are Pending or not ready).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Events about what it did and what failed.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
