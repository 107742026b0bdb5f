{{/*
The tenant namespace; every object of this chart lives in it (the release itself is recorded in the
platform's namespace, since a release cannot live in a namespace it creates), except the optional
post-apply hook Job and its ConfigMap, which stay in the release namespace (post-apply-job.yaml).
*/}}
{{- define "tenant-platform.namespace" -}}
{{- required "namespace is required" .Values.namespace }}
{{- end }}

{{/*
Labels of every object; NetworkPolicies and admission policies select on the tenancy.io/* keys.
*/}}
{{- define "tenant-platform.labels" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tenant-platform
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
tenancy.io/tenant-id: {{ required "tenant.id is required" .Values.tenant.id | quote }}
tenancy.io/tenant-slug: {{ required "tenant.slug is required" .Values.tenant.slug | quote }}
tenancy.io/plan: {{ required "tenant.plan is required" .Values.tenant.plan | quote }}
tenancy.io/model: {{ required "tenant.model is required" .Values.tenant.model | quote }}
{{- end }}
