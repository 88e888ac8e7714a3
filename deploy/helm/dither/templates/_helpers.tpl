{{/* Names, labels and the environment every program shares. */}}

{{- define "dither.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dither.fullname" -}}
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

{{/* A program's resources: <fullname>-<component>; 63 characters at most (DNS labels). */}}
{{- define "dither.componentName" -}}
{{- printf "%s-%s" (include "dither.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dither.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dither.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "dither.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "dither.selectorLabels" . }}
app.kubernetes.io/part-of: dither
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Labels of everything in the release that is not one program's (Secrets, metrics). */}}
{{- define "dither.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "dither.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: dither
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "dither.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "dither.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dither.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret with SERVICE_TOKEN, LINK_SIGNING_KEYS and API_KEY_PEPPER. */}}
{{- define "dither.secretsName" -}}
{{- default (printf "%s-secrets" (include "dither.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The Secret the chart makes for credentials given as values (credentials.yaml). */}}
{{- define "dither.credentialsName" -}}
{{- printf "%s-credentials" (include "dither.fullname" .) -}}
{{- end -}}

{{/* The gateway Service's DNS names, short to fully qualified. */}}
{{- define "dither.gatewayHosts" -}}
{{- $svc := include "dither.componentName" (dict "root" . "component" "gateway") -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | join "," -}}
{{- end -}}

{{- define "dither.publicBaseUrl" -}}
{{- if .Values.publicBaseUrl -}}
{{- .Values.publicBaseUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- printf "https://%s" (first .Values.ingress.hosts) -}}
{{- else -}}
{{- $svc := include "dither.componentName" (dict "root" . "component" "gateway") -}}
{{- if eq (int .Values.gateway.service.port) 80 -}}
{{- printf "http://%s.%s.svc" $svc .Release.Namespace -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%d" $svc .Release.Namespace (int .Values.gateway.service.port) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* env: one variable from a key of a Secret. Arguments: name, secret, key. */}}
{{- define "dither.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

{{/* env of every program: URLs, logs, the data directory, the shared secrets, PostgreSQL. */}}
{{- define "dither.env.common" -}}
- name: PUBLIC_BASE_URL
  value: {{ include "dither.publicBaseUrl" . | quote }}
- name: DITHER_DATA_DIR
  value: /var/lib/dither
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: STARTUP_WAIT_SECONDS
  value: {{ .Values.startupWaitSeconds | quote }}
{{- if .Values.metrics.enabled }}
- name: METRICS_ADDRESS
  value: {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- end }}
{{- with .Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- $secrets := include "dither.secretsName" . }}
{{ include "dither.secretEnv" (dict "name" "SERVICE_TOKEN" "secret" $secrets "key" "SERVICE_TOKEN") }}
{{ include "dither.secretEnv" (dict "name" "LINK_SIGNING_KEYS" "secret" $secrets "key" "LINK_SIGNING_KEYS") }}
{{ include "dither.secretEnv" (dict "name" "API_KEY_PEPPER" "secret" $secrets "key" "API_KEY_PEPPER") }}
- name: POSTGRES_HOST
  value: {{ .Values.postgresql.host | quote }}
- name: POSTGRES_PORT
  value: {{ .Values.postgresql.port | quote }}
- name: POSTGRES_USER
  value: {{ .Values.postgresql.user | quote }}
- name: POSTGRES_DB
  value: {{ .Values.postgresql.database | quote }}
- name: POSTGRES_POOL_SIZE
  value: {{ .Values.postgresql.poolSize | quote }}
{{- with .Values.postgresql }}
{{ include "dither.secretEnv" (dict "name" "POSTGRES_PASSWORD" "secret" (default (include "dither.credentialsName" $) .existingSecret) "key" (ternary .existingSecretKey "POSTGRES_PASSWORD" (not (empty .existingSecret)))) }}
{{- end }}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* env of the programs on Kafka (every service; not the gateway). */}}
{{- define "dither.env.kafka" -}}
- name: KAFKA_SERVER
  value: {{ .Values.kafka.servers | quote }}
- name: KAFKA_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: KAFKA_IMAGE_TOPIC
  value: {{ .Values.kafka.imageTopic | quote }}
- name: KAFKA_DITHER_TOPIC
  value: {{ .Values.kafka.ditherTopic | quote }}
{{- with .Values.kafka.groupPrefix }}
- name: KAFKA_GROUP_PREFIX
  value: {{ . | quote }}
{{- end }}
{{- if .Values.kafka.existingSecret }}
{{ include "dither.secretEnv" (dict "name" "KAFKA_PROPERTIES" "secret" .Values.kafka.existingSecret "key" .Values.kafka.existingSecretKey) }}
{{- else if .Values.kafka.properties }}
{{ include "dither.secretEnv" (dict "name" "KAFKA_PROPERTIES" "secret" (include "dither.credentialsName" .) "key" "KAFKA_PROPERTIES") }}
{{- end }}
{{- end -}}

{{/* env of the programs on the bucket: the gateway, upload- and dithering-service. */}}
{{- define "dither.env.s3" -}}
- name: S3_ENDPOINT
  value: {{ .Values.s3.endpoint | quote }}
- name: S3_REGION
  value: {{ .Values.s3.region | quote }}
- name: S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
{{- with .Values.s3.publicUrl }}
- name: S3_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.s3 }}
{{- $secret := default (include "dither.credentialsName" $) .existingSecret }}
{{ include "dither.secretEnv" (dict "name" "S3_ACCESS_KEY" "secret" $secret "key" (ternary .accessKeyKey "S3_ACCESS_KEY" (not (empty .existingSecret)))) }}
{{ include "dither.secretEnv" (dict "name" "S3_SECRET_KEY" "secret" $secret "key" (ternary .secretKeyKey "S3_SECRET_KEY" (not (empty .existingSecret)))) }}
{{- end }}
{{- end -}}

{{/* env of the notification service's mail. */}}
{{- define "dither.env.smtp" -}}
- name: SMTP_HOST
  value: {{ .Values.smtp.host | quote }}
- name: SMTP_PORT
  value: {{ .Values.smtp.port | quote }}
- name: SMTP_SECURITY
  value: {{ .Values.smtp.security | quote }}
- name: SMTP_VERIFY_TLS
  value: {{ ternary "on" "off" .Values.smtp.verifyTls | quote }}
- name: MAIL_FROM
  value: {{ .Values.smtp.from | quote }}
{{- if .Values.smtp.caConfigMap }}
- name: SMTP_CA_FILE
  value: /etc/dither/smtp-ca/ca.crt
{{- end }}
{{- with .Values.smtp }}
{{- if .user }}
- name: SMTP_USER
  value: {{ .user | quote }}
{{ include "dither.secretEnv" (dict "name" "SMTP_PASSWORD" "secret" (default (include "dither.credentialsName" $) .existingSecret) "key" (ternary .existingSecretKey "SMTP_PASSWORD" (not (empty .existingSecret)))) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* env: a program's own `env` map, then its `extraEnv` objects. Argument: the program's values. */}}
{{- define "dither.env.own" -}}
{{- range $name, $value := .env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A program's Deployment. Arguments: root (the chart's context), component (gateway, upload,
dithering, notification), program (its file in /usr/local/bin), values (the component's values),
env (its env list, YAML), autoscaled (the HPA sets the replicas).
*/}}
{{- define "dither.deployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "dither.componentName" . }}
  labels:
    {{- include "dither.labels" . | nindent 4 }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "dither.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "dither.labels" . | nindent 8 }}
        # The program's name, which the ServiceMonitor makes each target's `job` (as the stack's
        # Prometheus configuration, deploy/prometheus, names them).
        dither/program: {{ .program }}
      annotations:
        # A new rollout when a secret or credential given as a value changes.
        checksum/secrets: {{ toJson $root.Values.secrets | sha256sum }}
        checksum/credentials: {{ include (print $root.Template.BasePath "/credentials.yaml") $root | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "dither.serviceAccountName" $root }}
      # The programs never call the Kubernetes API.
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .program }}
          image: {{ include "dither.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["/usr/local/bin/{{ .program }}"]
          env:
            {{- .env | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ $v.port }}
              protocol: TCP
            {{- if $root.Values.metrics.enabled }}
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
            {{- end }}
          # Until the process serves: it waits up to STARTUP_WAIT_SECONDS for its servers first.
          startupProbe:
            httpGet:
              path: /health/live
              port: http
            periodSeconds: 5
            timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ div (add (int $root.Values.startupWaitSeconds) 60) 5 }}
          livenessProbe:
            httpGet:
              path: /health/live
              port: http
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /health/ready
              port: http
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/dither
            - name: tmp
              mountPath: /tmp
            {{- if and (eq .component "notification") $root.Values.smtp.caConfigMap }}
            - name: smtp-ca
              mountPath: /etc/dither/smtp-ca
              readOnly: true
            {{- end }}
      volumes:
        - name: data
          emptyDir:
            sizeLimit: {{ $root.Values.dataDirSizeLimit }}
        - name: tmp
          emptyDir:
            sizeLimit: {{ $root.Values.tmpSizeLimit }}
        {{- if and (eq .component "notification") $root.Values.smtp.caConfigMap }}
        - name: smtp-ca
          configMap:
            name: {{ $root.Values.smtp.caConfigMap }}
            items:
              - key: ca.crt
                path: ca.crt
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* A program's ClusterIP Service on its HTTP port. Arguments as dither.deployment, plus port. */}}
{{- define "dither.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "dither.componentName" . }}
  labels:
    {{- include "dither.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "dither.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .values.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{/* A program's PodDisruptionBudget, when enabled. Arguments as dither.deployment. */}}
{{- define "dither.pdb" -}}
{{- if .values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "dither.componentName" . }}
  labels:
    {{- include "dither.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "dither.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A container's env list from parts (each a YAML list, maybe empty), one part after another. */}}
{{- define "dither.joinEnv" -}}
{{- $parts := list -}}
{{- range . -}}
{{- with trim . -}}
{{- $parts = append $parts . -}}
{{- end -}}
{{- end -}}
{{- join "\n" $parts -}}
{{- end -}}
