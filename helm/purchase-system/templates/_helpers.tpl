{{/* Names ---------------------------------------------------------------------------------------- */}}

{{- define "purchase-system.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "purchase-system.fullname" -}}
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

{{- define "purchase-system.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<fullname>-web", "<fullname>-api": call with (dict "root" $ "component" "web") */}}
{{- define "purchase-system.componentName" -}}
{{- printf "%s-%s" (include "purchase-system.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels ---------------------------------------------------------------------------------------- */}}

{{- define "purchase-system.labels" -}}
helm.sh/chart: {{ include "purchase-system.chart" . }}
{{ include "purchase-system.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: purchase-system
{{- end }}

{{- define "purchase-system.selectorLabels" -}}
app.kubernetes.io/name: {{ include "purchase-system.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* call with (dict "root" $ "component" "web") */}}
{{- define "purchase-system.componentLabels" -}}
{{ include "purchase-system.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "purchase-system.componentSelectorLabels" -}}
{{ include "purchase-system.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Images: never "latest"; the tag defaults to the chart's appVersion. call with (dict "root" $ "image" .Values.web.image) */}}
{{- define "purchase-system.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString }}
{{- if eq $tag "latest" }}
{{- fail "image tags must be pinned: \"latest\" is not allowed" }}
{{- end }}
{{- $repository := .image.repository }}
{{- if .root.Values.imageRegistry }}
{{- $repository = printf "%s/%s" .root.Values.imageRegistry $repository }}
{{- end }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* Dependencies ---------------------------------------------------------------------------------- */}}

{{/* The Bitnami subcharts' fullname: "<release>-kafka" unless the release name already holds it. */}}
{{- define "purchase-system.dependencyName" -}}
{{- if contains .name .root.Release.Name }}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "purchase-system.kafkaBootstrapServers" -}}
{{- if .Values.kafkaClient.bootstrapServers }}
{{- .Values.kafkaClient.bootstrapServers }}
{{- else if .Values.kafka.enabled }}
{{- printf "%s:9092" (include "purchase-system.dependencyName" (dict "root" . "name" "kafka")) }}
{{- else }}
{{- fail "kafka.enabled=false needs kafkaClient.bootstrapServers (the external Kafka's address)" }}
{{- end }}
{{- end }}

{{- define "purchase-system.kafkaSasl" -}}
{{- if hasPrefix "SASL" .Values.kafkaClient.securityProtocol }}true{{ end }}
{{- end }}

{{- define "purchase-system.kafkaSaslSecret" -}}
{{- .Values.kafkaClient.sasl.existingSecret | required "kafkaClient.sasl.existingSecret: with SASL, a Secret holding each principal's password (keys web-password, api-password, topics-password, keda-password; see values-sasl.yaml)" }}
{{- end }}

{{- define "purchase-system.deadLetterTopic" -}}
{{- .Values.config.deadLetterTopic | default (printf "%s.dlq" .Values.config.topic) }}
{{- end }}

{{/* Environment shared by web, api and the topics Job: config from the ConfigMap, secrets by reference; with SASL,
each as its own Kafka principal. Call with (dict "root" $ "component" "web"). */}}
{{- define "purchase-system.kafkaEnv" -}}
{{- $component := .component }}
{{- with .root }}
- name: KAFKA_BOOTSTRAP_SERVERS
  valueFrom: {configMapKeyRef: {name: {{ include "purchase-system.fullname" . }}, key: KAFKA_BOOTSTRAP_SERVERS}}
- name: KAFKA_TOPIC
  valueFrom: {configMapKeyRef: {name: {{ include "purchase-system.fullname" . }}, key: KAFKA_TOPIC}}
- name: KAFKA_DLQ_TOPIC
  valueFrom: {configMapKeyRef: {name: {{ include "purchase-system.fullname" . }}, key: KAFKA_DLQ_TOPIC}}
- name: KAFKA_SECURITY_PROTOCOL
  valueFrom: {configMapKeyRef: {name: {{ include "purchase-system.fullname" . }}, key: KAFKA_SECURITY_PROTOCOL}}
- name: LOG_LEVEL
  valueFrom: {configMapKeyRef: {name: {{ include "purchase-system.fullname" . }}, key: LOG_LEVEL}}
{{- if include "purchase-system.kafkaSasl" . }}
- name: KAFKA_SASL_MECHANISM
  valueFrom: {configMapKeyRef: {name: {{ include "purchase-system.fullname" . }}, key: KAFKA_SASL_MECHANISM}}
- name: KAFKA_SASL_USERNAME
  value: {{ index .Values.kafkaClient.sasl.users $component | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "purchase-system.kafkaSaslSecret" . }}
      key: {{ $component }}-password
{{- end }}
{{- end }}
{{- end }}

{{/* Container pieces both services share. */}}
{{- define "purchase-system.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet: {path: /healthz, port: http}
  {{- /* A process that fails its liveness probe is frozen or wedged: it cannot use the pod's grace period, so the
  probe has a short one of its own (Kubernetes 1.25+). */}}
  {{- toYaml .Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet: {path: /readyz, port: http}
  {{- toYaml .Values.probes.readiness | nindent 2 }}
{{- end }}

{{/* The plain prometheus.io convention, for a Prometheus without the operator. */}}
{{- define "purchase-system.scrapeAnnotations" -}}
{{- if .Values.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{- define "purchase-system.lifecycle" -}}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .Values.preStopSleepSeconds }}"]
{{- end }}

{{/* NetworkPolicy ingress: the listed monitoring namespaces reach the metrics port of web and api, nothing else. */}}
{{- define "purchase-system.metricsIngress" -}}
{{- if .Values.networkPolicy.metricsNamespaces }}
- from:
    {{- range .Values.networkPolicy.metricsNamespaces }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ . }}
    {{- end }}
  ports:
    - {port: metrics, protocol: TCP}
{{- end }}
{{- end }}
