{{/*
The environment every Herald container shares, split into non-secret settings (ConfigMap) and
secrets (Secret). Both the release's objects and the migration hook's copies render these, so the
two never drift apart.
*/}}

{{/* Non-secret settings: the ConfigMap's data. */}}
{{- define "herald.configData" -}}
HOST: "0.0.0.0"
USER_SERVICE_URL: {{ include "herald.serviceUrl" (dict "root" . "role" "users") | quote }}
TEMPLATE_SERVICE_URL: {{ include "herald.serviceUrl" (dict "root" . "role" "templates") | quote }}
{{- with .Values.auth.bootstrapAdminEmail }}
BOOTSTRAP_ADMIN_EMAIL: {{ . | quote }}
{{- end }}
{{- with .Values.redis.keyPrefix }}
REDIS_KEY_PREFIX: {{ . | quote }}
{{- end }}
{{- with .Values.smtp }}
{{- if .host }}
SMTP_HOST: {{ .host | quote }}
SMTP_PORT: {{ .port | quote }}
SMTP_STARTTLS: {{ .starttls | quote }}
SMTP_SSL: {{ .ssl | quote }}
{{- with .username }}
SMTP_USERNAME: {{ . | quote }}
{{- end }}
{{- end }}
{{- with .mailFrom }}
MAIL_FROM: {{ . | quote }}
{{- end }}
{{- end }}
{{- with .Values.fcm }}
{{- if .projectId }}
FCM_PROJECT_ID: {{ .projectId | quote }}
FCM_CREDENTIALS_FILE: "/etc/herald/fcm/{{ .credentialsKey }}"
{{- with .endpoint }}
FCM_ENDPOINT: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.config }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/*
Secrets: the Secret's data (base64). JWT_SECRET, when not given, is generated once and then read
back from the release's Secret on every upgrade (a new one would log every user out).
*/}}
{{- define "herald.secretData" -}}
{{- $jwt := .Values.auth.jwtSecret }}
{{- if not $jwt }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "herald.fullname" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "JWT_SECRET") }}
{{- $jwt = index $existing.data "JWT_SECRET" | b64dec }}
{{- else }}
{{- $jwt = randAlphaNum 48 }}
{{- end }}
{{- end }}
JWT_SECRET: {{ $jwt | b64enc | quote }}
DATABASE_URL: {{ required "postgresql.url is required (or set auth.existingSecret)" .Values.postgresql.url | b64enc | quote }}
{{- with .Values.postgresql.usersUrl }}
USERS_DATABASE_URL: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.postgresql.templatesUrl }}
TEMPLATES_DATABASE_URL: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.postgresql.notificationsUrl }}
NOTIFICATIONS_DATABASE_URL: {{ . | b64enc | quote }}
{{- end }}
REDIS_URL: {{ required "redis.url is required (or set auth.existingSecret)" .Values.redis.url | b64enc | quote }}
RABBITMQ_URL: {{ required "rabbitmq.url is required (or set auth.existingSecret)" .Values.rabbitmq.url | b64enc | quote }}
{{- with .Values.auth.bootstrapAdminPassword }}
BOOTSTRAP_ADMIN_PASSWORD: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.smtp.password }}
SMTP_PASSWORD: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.alertWebhookUrl }}
ALERT_WEBHOOK_URL: {{ . | b64enc | quote }}
{{- end }}
{{- end }}
