// Validates KEDA objects (JSON array on stdin) against KEDA's CRD schemas, as packaged by
// @kubernetes-models/keda. Prints one line per object: "ok <kind>/<name>" or "invalid <kind>/<name>: <errors>".
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";

const kinds = { ScaledObject, TriggerAuthentication };
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = false;
for (const object of JSON.parse(input)) {
  const Model = kinds[object.kind];
  const label = `${object.kind}/${object.metadata?.name}`;
  if (!Model) { console.log(`invalid ${label}: not a KEDA kind this validator knows`); failed = true; continue; }
  try {
    new Model(object).validate();
    console.log(`ok ${label}`);
  } catch (error) {
    console.log(`invalid ${label}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
