{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, for app.kubernetes.io/name. */}}
{{- define "bare-ccm.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of every object: the release name when it contains the chart name (the usual
`helm install bare-ccm`, which gives the names doctor and the docs expect: bare-ccm,
bare-ccm-config), else release-chart.
*/}}
{{- define "bare-ccm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels that select bare-ccm's pods (immutable once installed). */}}
{{- define "bare-ccm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bare-ccm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The labels of every object. */}}
{{- define "bare-ccm.labels" -}}
{{ include "bare-ccm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- if not .Values.plainManifest }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}
{{- end -}}

{{/* The namespace of the Lease, its Role and the Events bare-ccm reports on it. */}}
{{- define "bare-ccm.leaseNamespace" -}}
{{- .Values.leaderElection.resourceNamespace | default .Release.Namespace -}}
{{- end -}}

{{/* The image reference. */}}
{{- define "bare-ccm.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The ConfigMap holding config.yaml (and the kubeconfig with apiServer.tlsServerName). */}}
{{- define "bare-ccm.configMapName" -}}
{{- printf "%s-config" (include "bare-ccm.fullname" .) -}}
{{- end -}}

{{/* host:port of the API server, brackets around an IPv6 host. */}}
{{- define "bare-ccm.apiServerAddress" -}}
{{- $host := toString .Values.apiServer.host -}}
{{- if contains ":" $host -}}
{{- printf "[%s]:%v" $host .Values.apiServer.port -}}
{{- else -}}
{{- printf "%s:%v" $host .Values.apiServer.port -}}
{{- end -}}
{{- end -}}

{{/* The labels that select the agent's pods (agent.enabled). */}}
{{- define "bare-ccm.agentSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-agent" (include "bare-ccm.name" .) }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The labels of the agent's objects. */}}
{{- define "bare-ccm.agentLabels" -}}
{{ include "bare-ccm.agentSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- if not .Values.plainManifest }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}
{{- end -}}
