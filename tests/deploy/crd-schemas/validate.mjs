// Validates custom objects (a JSON array on stdin) against their CRD schemas, as packaged by @kubernetes-models:
// KEDA's and prometheus-operator's. Prints one line per object: "ok <kind>/<name>" or "invalid <kind>/<name>: <errors>".
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { PodMonitor, PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const kinds = { ScaledObject, TriggerAuthentication, ServiceMonitor, PodMonitor, PrometheusRule };
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = false;
for (const object of JSON.parse(input)) {
  const Model = kinds[object.kind];
  const label = `${object.kind}/${object.metadata?.name}`;
  if (!Model) { console.log(`invalid ${label}: not a kind this validator knows`); failed = true; continue; }
  try {
    new Model(object).validate();
    console.log(`ok ${label}`);
  } catch (error) {
    console.log(`invalid ${label}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
