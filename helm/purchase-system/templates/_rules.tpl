{{/*
The recording and alert rules of the purchase system, as Prometheus rule groups (the PrometheusRule's spec.groups;
tests/deploy/test_rules.py hands the same groups to promtool). Every expression is scoped to this release: its
namespace, and the Services its ServiceMonitor scrapes (prometheus-operator labels each series with both).
Thresholds and durations: metrics.prometheusRule.alerts in values.yaml. Runbooks: docs/operations.md.
*/}}
{{- define "purchase-system.ruleGroups" -}}
{{- $rule := .Values.metrics.prometheusRule }}
{{- $alerts := $rule.alerts }}
{{- $ns := printf "namespace=%q" .Release.Namespace }}
{{- $web := printf "%s, service=%q" $ns (include "purchase-system.componentName" (dict "root" . "component" "web")) }}
{{- $api := printf "%s, service=%q" $ns (include "purchase-system.componentName" (dict "root" . "component" "api")) }}
{{- $targets := printf "%s, service=~%q" $ns (printf "%s-(web|api)" (include "purchase-system.fullname" .)) }}
{{- $scaledObject := printf "%s, scaledObject=%q" $ns (include "purchase-system.componentName" (dict "root" . "component" "api")) }}
{{- $runbook := $rule.runbookUrl | default "docs/operations.md" }}
- name: purchase-system.records
  rules:
    - record: purchase_system:buys_accepted:rate5m
      expr: sum by (namespace) (rate(purchases_accepted_total{ {{- $web -}} }[5m]))
    - record: purchase_system:buys_refused:rate5m
      expr: sum by (namespace, status) (rate(purchases_rejected_total{ {{- $web -}} }[5m]))
    # Refused by us (5xx: Kafka cannot take it, overload), of every buy; a client's own mistakes (4xx) are not here.
    - record: purchase_system:buys_unavailable:ratio_rate5m
      expr: |-
        sum by (namespace) (rate(purchases_rejected_total{ {{- $web }}, status=~"5.."}[5m]))
          / (sum by (namespace) (rate(purchases_accepted_total{ {{- $web -}} }[5m]))
             + sum by (namespace) (rate(purchases_rejected_total{ {{- $web -}} }[5m])))
    # Every web pod exports the same lag (read from Kafka): the max per partition is the group's.
    - record: purchase_system:consumer_group_lag:max
      expr: max by (namespace, group, topic, partition) (consumer_group_lag{ {{- $web -}} })
    - record: purchase_system:consumer_group_lag:sum
      expr: sum by (namespace, group, topic) (purchase_system:consumer_group_lag:max)
    - record: purchase_system:purchase_to_stored_seconds:p99_5m
      expr: histogram_quantile(0.99, sum by (namespace, le) (rate(purchase_accepted_to_stored_seconds_bucket{ {{- $api -}} }[5m])))
    - record: purchase_system:api_replicas:up
      expr: count by (namespace) (up{ {{- $api -}} } == 1)
- name: purchase-system.alerts
  rules:
    - alert: PurchaseConsumerLagHigh
      expr: purchase_system:consumer_group_lag:sum{ {{- $ns -}} } > {{ $alerts.consumerLagHigh.threshold }}
      for: {{ $alerts.consumerLagHigh.for }}
      labels:
        severity: {{ $alerts.consumerLagHigh.severity }}
      annotations:
        summary: 'Consumer group {{ "{{" }} $labels.group {{ "}}" }} is {{ "{{" }} $value | humanize {{ "}}" }} purchases behind on {{ "{{" }} $labels.topic {{ "}}" }}'
        description: Accepted purchases are waiting to be stored for more than {{ $alerts.consumerLagHigh.for }}; they are safe in Kafka, but customers do not see them in their history yet.
        runbook_url: {{ $runbook }}#purchaseconsumerlaghigh
    - alert: PurchaseConsumerLagGrowingAtMaxReplicas
      expr: |-
        deriv(purchase_system:consumer_group_lag:sum{ {{- $ns -}} }[{{ $alerts.lagGrowingAtMaxReplicas.window }}]) > 0
          and on (namespace) purchase_system:api_replicas:up{ {{- $ns -}} } >= {{ .Values.keda.maxReplicaCount }}
      for: {{ $alerts.lagGrowingAtMaxReplicas.for }}
      labels:
        severity: {{ $alerts.lagGrowingAtMaxReplicas.severity }}
      annotations:
        summary: The lag keeps growing with api at its ceiling of {{ .Values.keda.maxReplicaCount }} replicas (one per partition)
        description: KEDA cannot add consumers beyond the topic's {{ .Values.config.partitions }} partitions; the consumers are too slow or blocked.
        runbook_url: {{ $runbook }}#purchaseconsumerlaggrowingatmaxreplicas
    - alert: PurchaseRefusalsHigh
      expr: purchase_system:buys_unavailable:ratio_rate5m{ {{- $ns -}} } > {{ $alerts.refusalsHigh.ratio }}
      for: {{ $alerts.refusalsHigh.for }}
      labels:
        severity: {{ $alerts.refusalsHigh.severity }}
      annotations:
        summary: '{{ "{{" }} $value | humanizePercentage {{ "}}" }} of buys are refused with a 5xx'
        description: web answers 503 (outcome unknown; clients retry with their Idempotency-Key) to more than {{ mulf $alerts.refusalsHigh.ratio 100 }} % of buys.
        runbook_url: {{ $runbook }}#purchaserefusalshigh
    - alert: PurchaseDeadLettered
      expr: sum by (namespace, reason) (increase(purchases_dead_lettered_total{ {{- $api -}} }[{{ $alerts.deadLettered.window }}])) > 0
      for: {{ $alerts.deadLettered.for }}
      labels:
        severity: {{ $alerts.deadLettered.severity }}
      annotations:
        summary: 'Events were dead-lettered ({{ "{{" }} $labels.reason {{ "}}" }})'
        description: Events that can never be stored went to the dead-letter topic {{ include "purchase-system.deadLetterTopic" . }}; they are kept there, not lost, and need a person.
        runbook_url: {{ $runbook }}#purchasedeadlettered
    - alert: PurchaseToStoredSlow
      expr: purchase_system:purchase_to_stored_seconds:p99_5m{ {{- $ns -}} } > {{ $alerts.purchaseToStoredSlow.objectiveSeconds }}
      for: {{ $alerts.purchaseToStoredSlow.for }}
      labels:
        severity: {{ $alerts.purchaseToStoredSlow.severity }}
      annotations:
        summary: 'Purchase to stored p99 is {{ "{{" }} $value | humanizeDuration {{ "}}" }}, above its objective of {{ $alerts.purchaseToStoredSlow.objectiveSeconds }} s'
        description: The time from a purchase's acceptance to its storage (the SLO) is above its objective.
        runbook_url: {{ $runbook }}#purchasetostoredslow
    - alert: PurchaseProducerReplacedRepeatedly
      expr: sum by (namespace, pod) (increase(kafka_producer_replacements_total{ {{- $web -}} }[{{ $alerts.producerReplaced.window }}])) >= {{ $alerts.producerReplaced.count }}
      for: {{ $alerts.producerReplaced.for }}
      labels:
        severity: {{ $alerts.producerReplaced.severity }}
      annotations:
        summary: 'web pod {{ "{{" }} $labels.pod {{ "}}" }} replaced its Kafka producer {{ "{{" }} $value | humanize {{ "}}" }} times in {{ $alerts.producerReplaced.window }}'
        description: Each failed delivery makes web replace its producer; repeated ones mean Kafka is flapping or unreachable from this pod.
        runbook_url: {{ $runbook }}#purchaseproducerreplacedrepeatedly
    - alert: PurchaseKafkaUnavailable
      expr: max by (namespace) (kafka_can_take_purchases{ {{- $web -}} }) == 0
      for: {{ $alerts.kafkaUnavailable.for }}
      labels:
        severity: {{ $alerts.kafkaUnavailable.severity }}
      annotations:
        summary: No web pod can publish to Kafka
        description: Every buy is answered 503; history reads still work.
        runbook_url: {{ $runbook }}#purchasekafkaunavailable
    - alert: PurchaseLagUnmeasured
      expr: time() - max by (namespace) (consumer_group_lag_sampled_timestamp_seconds{ {{- $web -}} }) > {{ $alerts.lagUnmeasured.staleSeconds }}
      for: {{ $alerts.lagUnmeasured.for }}
      labels:
        severity: {{ $alerts.lagUnmeasured.severity }}
      annotations:
        summary: The consumer group's lag has not been read for {{ $alerts.lagUnmeasured.staleSeconds }} s
        description: web cannot read the group's offsets from Kafka, so PurchaseConsumerLagHigh cannot fire.
        runbook_url: {{ $runbook }}#purchaselagunmeasured
    - alert: PurchaseKedaScalerErrors
      expr: |-
        sum by (namespace, scaledObject) (increase(keda_scaler_detail_errors_total{ {{- $scaledObject -}} }[{{ $alerts.kedaScalerErrors.window }}])) > 0
          or sum by (namespace, scaledObject) (increase(keda_scaled_object_errors_total{ {{- $scaledObject -}} }[{{ $alerts.kedaScalerErrors.window }}])) > 0
      for: {{ $alerts.kedaScalerErrors.for }}
      labels:
        severity: {{ $alerts.kedaScalerErrors.severity }}
      annotations:
        summary: 'KEDA cannot read the lag for {{ "{{" }} $labels.scaledObject {{ "}}" }}'
        description: While KEDA's Kafka scaler fails, the HPA keeps the replicas it has and does not follow the lag.
        runbook_url: {{ $runbook }}#purchasekedascalererrors
    - alert: PurchaseTargetDown
      expr: up{ {{- $targets -}} } == 0
      for: {{ $alerts.targetDown.for }}
      labels:
        severity: {{ $alerts.targetDown.severity }}
      annotations:
        summary: 'Prometheus cannot scrape {{ "{{" }} $labels.pod {{ "}}" }} ({{ "{{" }} $labels.service {{ "}}" }})'
        description: The pod's metrics port does not answer; the pod may be frozen, crashing, or cut off by a NetworkPolicy.
        runbook_url: {{ $runbook }}#purchasetargetdown
{{- with $rule.groups }}
{{ toYaml . }}
{{- end }}
{{- end }}
