{{/*
Chart name, truncated to 63 characters (the DNS label limit of Kubernetes names).
*/}}
{{- define "tenant-app.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, followed by the chart name unless the release name contains it.
*/}}
{{- define "tenant-app.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "tenant-app.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object; the tenancy.io/* keys are the ones the namespace construct uses.
*/}}
{{- define "tenant-app.labels" -}}
helm.sh/chart: {{ include "tenant-app.chart" . }}
{{ include "tenant-app.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
tenancy.io/tenant-id: {{ required "tenant.id is required" .Values.tenant.id | quote }}
tenancy.io/tenant-slug: {{ required "tenant.slug is required" .Values.tenant.slug | quote }}
tenancy.io/plan: {{ .Values.tenant.plan | quote }}
tenancy.io/model: {{ .Values.tenant.model | quote }}
{{- end }}

{{/*
Selector labels: immutable on a Deployment, so nothing here may change between releases.
*/}}
{{- define "tenant-app.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenant-app.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount of the pods: created by the namespace construct, not by this chart.
*/}}
{{- define "tenant-app.serviceAccountName" -}}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}

{{/*
The container image: repository and tag, or repository[:tag]@digest when a digest pins it.
*/}}
{{- define "tenant-app.image" -}}
{{- $repository := required "image.repository is required" .Values.image.repository -}}
{{- if .Values.image.digest -}}
{{- $repository }}{{ with .Values.image.tag }}:{{ . }}{{ end }}@{{ .Values.image.digest }}
{{- else -}}
{{- $repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}
