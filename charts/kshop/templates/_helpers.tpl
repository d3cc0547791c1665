{{/* Names and labels. */}}
{{- define "kshop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kshop.fullname" -}}
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

{{- define "kshop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kshop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kshop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kshop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kshop
{{- end -}}

{{/* Labels of one component; call with (list $ "component"). */}}
{{- define "kshop.componentLabels" -}}
{{ include "kshop.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "kshop.componentSelector" -}}
{{ include "kshop.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "kshop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kshop.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kshop.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- with .Values.image.digest }}@{{ . }}{{ end -}}
{{- end -}}

{{/*
A reference to the Knative Service of a function that must be deployed;
call with (list $ "name" "where it is referenced").
*/}}
{{- define "kshop.functionRef" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $fn := index $root.Values.functions $name | default dict -}}
{{- if or (not $fn) (eq (toString $fn.enabled) "false") -}}
{{- fail (printf "%s refers to function %q, which is not an enabled function" (index . 2) $name) -}}
{{- end -}}
ref:
  apiVersion: serving.knative.dev/v1
  kind: Service
  name: {{ $name }}
{{- end -}}

{{/*
Knative's delivery spec from the topology's shape: deadLetterFunction names a
function and becomes a deadLetterSink ref to its Service; other fields pass
through. Call with (list $ delivery "where").
*/}}
{{- define "kshop.delivery" -}}
{{- $d := index . 1 -}}
{{- $out := omit $d "deadLetterFunction" -}}
{{- with $d.deadLetterFunction -}}
{{- $_ := set $out "deadLetterSink" (include "kshop.functionRef" (list (index $ 0) . (printf "%s.deadLetterFunction" (index $ 2))) | fromYaml) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Is the bundled MongoDB / Redis deployed? "true" or "". */}}
{{- define "kshop.mongodb.bundled" -}}
{{- if and .Values.mongodb.bundled (not .Values.mongodb.url) }}true{{ end -}}
{{- end -}}
{{- define "kshop.redis.bundled" -}}
{{- if and .Values.redis.bundled (not .Values.redis.url) }}true{{ end -}}
{{- end -}}

{{/*
A generated secret value that survives upgrades: the given value, else the
one already stored in the Secret, else a new random one. `helm template` has
no cluster to look in, so it makes a new one each time.
Call with (list $ "secret-name" "key" given).
*/}}
{{- define "kshop.keptSecret" -}}
{{- $root := index . 0 -}}
{{- $given := index . 3 -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (index . 1) -}}
{{- $data := dig "data" dict $existing -}}
{{- if hasKey $data (index . 2) -}}
{{- index $data (index . 2) | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The broker URL functions publish to, when not bound by a SinkBinding. */}}
{{- define "kshop.brokerUrl" -}}
{{- $ingress := index .Values.eventing.ingress .Values.broker.class | required (printf "eventing.ingress has no entry for broker class %s" .Values.broker.class) -}}
{{- printf "%s/%s/%s" (trimSuffix "/" $ingress) .Release.Namespace .Values.broker.name -}}
{{- end -}}
