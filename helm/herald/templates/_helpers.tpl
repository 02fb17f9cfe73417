{{/*
Names, labels and the table of roles. The pod template every workload shares is in _pod.tpl.
*/}}

{{/* Expand the name of the chart. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A default fully qualified app name, truncated to 63 characters (some Kubernetes name fields are
limited to that). If the release name contains the chart name it is used as the full name.
*/}}
{{- define "herald.fullname" -}}
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

{{/* Chart name and version, as used by the chart label. */}}
{{- define "herald.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "herald.labels" -}}
helm.sh/chart: {{ include "herald.chart" . }}
{{ include "herald.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: herald
{{- end }}

{{/* Selector labels (name and instance only: selectors are immutable). */}}
{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
A role's name, labels and selector labels. Called with a dict: {"root": $, "role": "email-worker"}.
*/}}
{{- define "herald.componentName" -}}
{{- printf "%s-%s" (include "herald.fullname" .root) .role | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.componentLabels" -}}
{{ include "herald.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "herald.componentSelectorLabels" -}}
{{ include "herald.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{/* The image, its tag defaulting to the chart's appVersion. */}}
{{- define "herald.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* The name of the service account to use. */}}
{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ConfigMap and the Secret every container reads its environment from. */}}
{{- define "herald.configMapName" -}}
{{- include "herald.fullname" . }}
{{- end }}

{{- define "herald.secretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else }}
{{- include "herald.fullname" . }}
{{- end }}
{{- end }}

{{/*
The roles: one Deployment each, named after the role as in docker-compose.yml. `key` is the role's
block in values.yaml; `port` marks the HTTP services; `worker` the dramatiq workers (metrics on
9191); `autoscale` the roles that may get an HPA (the scheduler never: exactly one replica);
`queue` the RabbitMQ queue KEDA watches.
*/}}
{{- define "herald.roles" -}}
gateway:            {key: gateway, port: 8000, portEnv: GATEWAY_PORT, autoscale: true}
users:              {key: users, port: 8001, portEnv: USERS_PORT, autoscale: true}
templates:          {key: templates, port: 8002, portEnv: TEMPLATES_PORT, autoscale: true}
email-worker:       {key: emailWorker, worker: true, autoscale: true, queue: email.queue}
push-worker:        {key: pushWorker, worker: true, autoscale: true, queue: push.queue}
maintenance-worker: {key: maintenanceWorker, worker: true}
webhook-worker:     {key: webhookWorker, worker: true, autoscale: true, queue: webhooks.queue}
scheduler:          {key: scheduler}
{{- end }}

{{/* The in-cluster URL of an HTTP role's Service. Called with {"root": $, "role": "users"}. */}}
{{- define "herald.serviceUrl" -}}
{{- $roles := include "herald.roles" .root | fromYaml }}
{{- $role := get $roles .role }}
{{- $values := get .root.Values $role.key }}
{{- printf "http://%s:%v" (include "herald.componentName" .) $values.service.port }}
{{- end }}

{{/*
Is this role scaled by KEDA (and so gets no HPA and no fixed replica count)?
Called with {"root": $, "role": ..., "spec": <its entry in herald.roles>}; prints "true" or "".
*/}}
{{- define "herald.kedaScaled" -}}
{{- if and .root.Values.keda.enabled .spec.queue }}true{{ end }}
{{- end }}

{{/* Is this role scaled by an HPA of the chart? Prints "true" or "". */}}
{{- define "herald.hpaScaled" -}}
{{- $values := get .root.Values .spec.key }}
{{- if and .spec.autoscale $values.autoscaling.enabled (not (include "herald.kedaScaled" .)) }}true{{ end }}
{{- end }}

{{/* The HPA behaviour of the design: +2 pods per period up, 5-minute stabilisation down. */}}
{{- define "herald.autoscalingBehavior" -}}
{{- with .Values.autoscalingBehavior -}}
scaleUp:
  stabilizationWindowSeconds: 0
  selectPolicy: Max
  policies:
    - type: Pods
      value: {{ .scaleUpPods }}
      periodSeconds: {{ .periodSeconds }}
scaleDown:
  stabilizationWindowSeconds: {{ .scaleDownStabilizationWindowSeconds }}
  selectPolicy: Max
  policies:
    - type: Pods
      value: {{ .scaleDownPods }}
      periodSeconds: {{ .periodSeconds }}
{{- end }}
{{- end }}
