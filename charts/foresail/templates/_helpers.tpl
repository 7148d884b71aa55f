{{- define "foresail.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "foresail.serviceAccountName" -}}
{{- default (include "foresail.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "foresail.labels" -}}
app.kubernetes.io/name: foresail
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "foresail.selector" -}}
app.kubernetes.io/name: foresail
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}


{{- /* The Secrets of prometheus.auth that are set: [{name: prometheus-<dir>, secret: <name>}] */ -}}
{{- define "foresail.promAuthVolumes" -}}
{{- $a := .Values.prometheus.auth }}
{{- $out := list }}
{{- range $dir, $secret := dict "token" $a.bearerToken.secretName "basic-auth" $a.basicAuth.secretName "ca" $a.ca.secretName "client" $a.clientCert.secretName "headers" $a.headers.secretName }}
{{- if $secret }}{{ $out = append $out (dict "name" (printf "prometheus-%s" $dir) "secret" $secret) }}{{ end }}
{{- end }}
{{- toYaml $out }}
{{- end -}}

{{- /* the operator image: repository:tag@digest (the tag shown, the digest pulled) */ -}}
{{- define "foresail.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}{{ with .Values.image.digest }}@{{ . }}{{ end }}
{{- end -}}

{{- /* FORESAIL_GATEWAY: [namespace/]name[:sectionName] of rollout.gateway, empty without a name */ -}}
{{- define "foresail.gateway" -}}
{{- with .Values.rollout.gateway -}}
{{- if .name -}}{{ with .namespace }}{{ . }}/{{ end }}{{ .name }}{{ with .sectionName }}:{{ . }}{{ end }}{{- end -}}
{{- end -}}
{{- end -}}
