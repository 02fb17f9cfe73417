{{/*
The one pod template every Herald workload uses (the Deployments, the migration Job and, through
the same image and environment, the test pod). Called with a dict:
  root                $
  role                the role, e.g. "email-worker"; also the container's argument (scripts/entrypoint.sh)
  spec                the role's entry in herald.roles (port, worker, ...); may be empty
  values              the role's block in values.yaml
  configMapName       the ConfigMap to read settings from
  secretName          the Secret to read secrets from
  serviceAccountName  the service account
  restartPolicy       optional (Jobs)
*/}}
{{- define "herald.podTemplate" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $spec := .spec | default dict -}}
metadata:
  labels:
    {{- include "herald.componentLabels" (dict "root" $root "role" .role) | nindent 4 }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Roll the pods when a setting changes: they read the environment only at start.
    checksum/config: {{ include "herald.configData" $root | sha256sum }}
    {{- if not $root.Values.auth.existingSecret }}
    checksum/secret: {{ include "herald.secretData" $root | sha256sum }}
    {{- end }}
    {{- with (merge (dict) ($v.podAnnotations | default dict) $root.Values.podAnnotations) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  serviceAccountName: {{ .serviceAccountName }}
  # Herald never talks to the Kubernetes API.
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automount }}
  {{- with $root.Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds | default $root.Values.terminationGracePeriodSeconds }}
  containers:
    - name: {{ .role }}
      image: {{ include "herald.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: [{{ .role | quote }}]
      env:
        {{- if $spec.port }}
        - name: {{ $spec.portEnv }}
          value: {{ $spec.port | quote }}
        - name: WEB_PROCESSES
          value: {{ $v.webProcesses | quote }}
        {{- end }}
        {{- if $spec.worker }}
        - name: WORKER_PROCESSES
          value: {{ $v.processes | quote }}
        - name: WORKER_THREADS
          value: {{ $v.threads | quote }}
        {{- end }}
        {{- range $name, $value := $v.env }}
        - name: {{ $name }}
          value: {{ $value | toString | quote }}
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ .configMapName }}
        - secretRef:
            name: {{ .secretName }}
      {{- if or $spec.port $spec.worker }}
      ports:
        {{- if $spec.port }}
        - name: http
          containerPort: {{ $spec.port }}
          protocol: TCP
        {{- end }}
        {{- if $spec.worker }}
        - name: metrics
          containerPort: {{ $root.Values.metrics.workerPort }}
          protocol: TCP
        {{- end }}
      {{- end }}
      {{- if $spec.port }}
      {{- with $root.Values.startupProbe }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- end }}
      {{- with $v.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        # The root filesystem is read-only; /tmp is the one writable place (dramatiq's Prometheus
        # multiprocess files, Python's tempfile).
        - name: tmp
          mountPath: /tmp
        {{- if $root.Values.fcm.projectId }}
        - name: fcm-credentials
          mountPath: /etc/herald/fcm
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
    {{- if $root.Values.fcm.projectId }}
    - name: fcm-credentials
      secret:
        secretName: {{ required "fcm.credentialsSecret is required when fcm.projectId is set" $root.Values.fcm.credentialsSecret }}
    {{- end }}
  {{- with ($v.nodeSelector | default $root.Values.nodeSelector) }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($v.affinity | default $root.Values.affinity) }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($v.tolerations | default $root.Values.tolerations) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with ($v.topologySpreadConstraints | default $root.Values.topologySpreadConstraints) }}
  topologySpreadConstraints:
    {{- tpl (toYaml .) $root | nindent 4 }}
  {{- end }}
{{- end }}
