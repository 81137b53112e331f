{{/*
Names, labels and the pieces every sluice pod shares.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, or RELEASE-CHART (just RELEASE when
the release name already contains the chart name). 63 characters at most, as DNS labels
allow; component suffixes are kept short so names stay within that.
*/}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end }}

{{/* Labels that select the release's pods; a component label narrows them further. */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: (dict "ctx" $ "component" "data-plane"). */}}
{{- define "sluice.componentLabels" -}}
{{ include "sluice.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sluice.componentSelectorLabels" -}}
{{ include "sluice.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sluice.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Secret names: the operator's existingSecret, else the one the chart makes. */}}
{{- define "sluice.databaseSecretName" -}}
{{- default (printf "%s-database" (include "sluice.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{- define "sluice.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}url{{ end }}
{{- end }}

{{- define "sluice.objectStoreSecretName" -}}
{{- default (printf "%s-object-store" (include "sluice.fullname" .)) .Values.objectStore.existingSecret }}
{{- end }}

{{- define "sluice.rootKeySecretName" -}}
{{- default (printf "%s-root-key" (include "sluice.fullname" .)) .Values.rootKey.existingSecret }}
{{- end }}

{{- define "sluice.rootKeySecretKey" -}}
{{- if .Values.rootKey.existingSecret }}{{ .Values.rootKey.existingSecretKey }}{{ else }}root.key{{ end }}
{{- end }}

{{- define "sluice.bootstrapSecretName" -}}
{{- default (printf "%s-bootstrap" (include "sluice.fullname" .)) .Values.bootstrap.existingSecret }}
{{- end }}

{{- define "sluice.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "sluice.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* In-cluster DNS names of the Kinesis endpoint (data plane) and the control plane. */}}
{{- define "sluice.dataPlaneHost" -}}
{{- printf "%s.%s.svc" (include "sluice.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "sluice.controlPlaneHost" -}}
{{- printf "%s-control-plane.%s.svc" (include "sluice.fullname" .) .Release.Namespace }}
{{- end }}

{{/* Every DNS name the server certificate covers. */}}
{{- define "sluice.tlsDnsNames" -}}
{{- $full := include "sluice.fullname" . }}
{{- $names := list }}
{{- range $svc := list $full (printf "%s-control-plane" $full) }}
{{- $names = concat $names (list $svc (printf "%s.%s" $svc $.Release.Namespace) (printf "%s.%s.svc" $svc $.Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc $.Release.Namespace)) }}
{{- end }}
{{- concat $names .Values.tls.extraDnsNames | uniq | toJson }}
{{- end }}

{{/*
Refuse values that would make a broken or unsafe release, with a message that names the key.
*/}}
{{- define "sluice.validate" -}}
{{- $drain := add .Values.server.preStopSleepSeconds .Values.server.shutdownGraceSeconds }}
{{- if le (int .Values.server.terminationGracePeriodSeconds) (int $drain) }}
{{- fail (printf "server.terminationGracePeriodSeconds (%v) must exceed server.preStopSleepSeconds + server.shutdownGraceSeconds (%v), or the kubelet kills pods before they drain" .Values.server.terminationGracePeriodSeconds $drain) }}
{{- end }}
{{- if and .Values.tls.certManager.enabled .Values.tls.existingSecret }}
{{- fail "tls.certManager.enabled and tls.existingSecret are alternatives: set one" }}
{{- end }}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" }}
{{- end }}
{{- if and .Values.tls.certManager.enabled (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) }}
{{- fail "tls.certManager.enabled, but the cluster does not serve cert-manager.io/v1: install cert-manager first (with helm template, pass --api-versions cert-manager.io/v1)" }}
{{- end }}
{{- $cpPdb := .Values.controlPlane.podDisruptionBudget }}
{{- if and $cpPdb.enabled (ge (int $cpPdb.minAvailable) (int .Values.controlPlane.replicaCount)) }}
{{- fail (printf "controlPlane.podDisruptionBudget.minAvailable (%v) must be below controlPlane.replicaCount (%v), or no node running the control plane could ever be drained" $cpPdb.minAvailable .Values.controlPlane.replicaCount) }}
{{- end }}
{{- if and .Values.dataPlane.autoscaling.enabled (gt (int .Values.dataPlane.autoscaling.minReplicas) (int .Values.dataPlane.autoscaling.maxReplicas)) }}
{{- fail "dataPlane.autoscaling.minReplicas must not exceed dataPlane.autoscaling.maxReplicas" }}
{{- end }}
{{- /* Without these the migrate hook and the servers would wait for Secrets that nothing makes. */}}
{{- if not (or .Values.database.existingSecret .Values.database.url) }}
{{- fail "set database.existingSecret (a Secret with the Postgres URL; recommended) or database.url: every plane shares one Postgres catalog, and the chart does not run one" }}
{{- end }}
{{- if not (or .Values.objectStore.existingSecret .Values.objectStore.bucket) }}
{{- fail "set objectStore.existingSecret (a Secret with endpoint, bucket, region, access-key-id, secret-access-key; recommended) or objectStore.bucket with its endpoint and keys: the data planes share one S3-compatible bucket, and the chart does not run one" }}
{{- end }}
{{- end }}

{{/* The non-secret environment, from the release's ConfigMap. */}}
{{- define "sluice.configEnvFrom" -}}
- configMapRef:
    name: {{ include "sluice.fullname" . }}-config
{{- end }}

{{/* Files from Secrets and the writable scratch directories, for a server container.
Every secret is a file (the ConfigMap's SLUICE_*_FILE settings name them), never an
environment variable: environments leak into crash reports, /proc and child processes. */}}
{{- define "sluice.serverVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/sluice
- name: tls
  mountPath: /etc/sluice/tls
  readOnly: true
- name: database
  mountPath: /etc/sluice/database
  readOnly: true
- name: object-store
  mountPath: /etc/sluice/object-store
  readOnly: true
- name: root-key
  mountPath: /etc/sluice/root-key
  readOnly: true
{{- if .bootstrap }}
- name: bootstrap
  mountPath: /etc/sluice/bootstrap
  readOnly: true
{{- end }}
{{- end }}

{{- define "sluice.serverVolumes" -}}
{{- $ctx := .ctx -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ $ctx.Values.scratchSizeLimit }}
- name: data
  emptyDir:
    sizeLimit: {{ $ctx.Values.scratchSizeLimit }}
- name: tls
  secret:
    secretName: {{ include "sluice.tlsSecretName" $ctx }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
- name: database
  secret:
    secretName: {{ include "sluice.databaseSecretName" $ctx }}
    defaultMode: 0440
    items:
      - key: {{ include "sluice.databaseSecretKey" $ctx }}
        path: url
- name: object-store
  secret:
    secretName: {{ include "sluice.objectStoreSecretName" $ctx }}
    defaultMode: 0440
- name: root-key
  secret:
    secretName: {{ include "sluice.rootKeySecretName" $ctx }}
    defaultMode: 0440
    items:
      - key: {{ include "sluice.rootKeySecretKey" $ctx }}
        path: root.key
{{- if .bootstrap }}
- name: bootstrap
  secret:
    secretName: {{ include "sluice.bootstrapSecretName" $ctx }}
    defaultMode: 0440
    items:
      - key: credentials
        path: credentials
{{- end }}
{{- end }}

{{/* Probes over HTTPS on the TLS port (there is no plaintext listener): liveness and
startup GET /health (the process serves); readiness GET /ready (the catalog and the
object store answer too, so a pod whose database is away leaves the Service). */}}
{{- define "sluice.probes" -}}
startupProbe:
  httpGet:
    path: /health
    port: https
    scheme: HTTPS
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
readinessProbe:
  httpGet:
    path: /ready
    port: https
    scheme: HTTPS
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
livenessProbe:
  httpGet:
    path: /health
    port: https
    scheme: HTTPS
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
{{- end }}

{{/* A preStop sleep, so endpoints drop a terminating pod before it stops accepting. */}}
{{- define "sluice.lifecycle" -}}
{{- if gt (int .Values.server.preStopSleepSeconds) 0 -}}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.server.preStopSleepSeconds }}
{{- end }}
{{- end }}

{{- define "sluice.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The pod template of a server Deployment:
(dict "ctx" $ "component" "data-plane" "spec" .Values.dataPlane "bootstrap" false).
*/}}
{{- define "sluice.serverPodTemplate" -}}
{{- $ctx := .ctx -}}
metadata:
  labels:
    {{- include "sluice.componentLabels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
  annotations:
    checksum/config: {{ include (print $ctx.Template.BasePath "/configmap.yaml") $ctx | sha256sum }}
    {{- with .spec.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "sluice.serviceAccountName" $ctx }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with include "sluice.imagePullSecrets" $ctx }}{{ . | nindent 2 }}{{ end }}
  securityContext:
    {{- toYaml $ctx.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $ctx.Values.server.terminationGracePeriodSeconds }}
  containers:
    - name: sluice
      image: {{ include "sluice.image" $ctx }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args:
        {{- toYaml .spec.args | nindent 8 }}
      ports:
        - name: https
          containerPort: {{ $ctx.Values.server.port }}
          protocol: TCP
      envFrom:
        {{- include "sluice.configEnvFrom" $ctx | nindent 8 }}
      {{- if .bootstrap }}
      env:
        - name: SLUICE_BOOTSTRAP_CREDENTIALS_FILE
          value: /etc/sluice/bootstrap/credentials
      {{- end }}
      {{- include "sluice.probes" $ctx | nindent 6 }}
      {{- with include "sluice.lifecycle" $ctx }}{{ . | nindent 6 }}{{ end }}
      resources:
        {{- toYaml .spec.resources | nindent 8 }}
      securityContext:
        {{- toYaml $ctx.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        {{- include "sluice.serverVolumeMounts" (dict "bootstrap" .bootstrap) | nindent 8 }}
  volumes:
    {{- include "sluice.serverVolumes" (dict "ctx" $ctx "bootstrap" .bootstrap) | nindent 4 }}
  {{- with .spec.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .spec.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .spec.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* NetworkPolicy egress rules to DNS: (the .Values.networkPolicy.egress.dns map). */}}
{{- define "sluice.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          {{- toYaml .namespaceSelector | nindent 10 }}
      podSelector:
        matchLabels:
          {{- toYaml .podSelector | nindent 10 }}
  ports:
    - protocol: UDP
      port: {{ .port }}
    - protocol: TCP
      port: {{ .port }}
{{- end }}

{{/* An egress rule to CIDRs and/or selected pods on some ports: (an egress.database map). */}}
{{- define "sluice.peerEgress" -}}
{{- /* With no peer at all, no rule: an empty `to` would allow every destination. */ -}}
{{- if or .cidrs .namespaceSelector .podSelector -}}
- to:
    {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- if or .namespaceSelector .podSelector }}
    - {{- with .namespaceSelector }}
      namespaceSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
      {{- with .podSelector }}
      podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
    {{- end }}
  ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{/* The pod-level settings of a `helm test` pod. */}}
{{- define "sluice.testPodSpec" -}}
restartPolicy: Never
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}
