"""Validate custom resources in rendered manifests against their CustomResourceDefinitions.

kubernetes-validate checks the built-in kinds against the Kubernetes schemas; the
ServiceMonitor and PrometheusRule are the Prometheus Operator's, whose CRDs (from its Go
module, fetched by scripts/check-deploy.sh) carry an OpenAPI v3 schema. Strict as
kubernetes-validate --strict is: an object schema that lists its properties and does not
preserve unknown fields rejects any other property.

usage: validate_crs.py CRD_FILE... -- MANIFEST... ; custom kinds with no CRD given fail.
"""

import sys

import jsonschema
import yaml

# Kinds with no published CRD to check against here, and what checks them instead.
UNCHECKED = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): "generated and compared by tests/tests/deploy.rs",
    # Strimzi's io.strimzi:api jar (Maven Central) holds the Java model, not the CRD schemas.
    ("kafka.strimzi.io/v1", "KafkaUser"): "hand-written (k8s/topics/kafka-user.yaml) from Strimzi's v1 API reference",
}


def strict(schema):
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def main(crd_files, manifests):
    schemas = {}
    for path in crd_files:
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = version["schema"]["openAPIV3Schema"]
                    # metadata is the API server's to check.
                    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                    schemas[(f"{group}/{version['name']}", kind)] = strict(schema)
    failed = 0
    checked = 0
    for path in manifests:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc:
                    continue
                key = (doc.get("apiVersion", ""), doc.get("kind", ""))
                if "/" not in key[0] or key[0].split("/")[0].endswith(".k8s.io") or key[0].split("/")[0] in ("apps", "batch", "policy"):
                    continue  # built-in: kubernetes-validate's
                name = f"{path}: {key[1]} {doc.get('metadata', {}).get('name')}"
                if key in UNCHECKED:
                    continue
                schema = schemas.get(key)
                if schema is None:
                    print(f"{name}: no CRD for {key[0]} {key[1]}", file=sys.stderr)
                    failed += 1
                    continue
                errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
                for e in errors:
                    where = "/".join(str(p) for p in e.absolute_path)
                    print(f"{name}: {where}: {e.message}", file=sys.stderr)
                failed += bool(errors)
                checked += 1
    print(f"{checked} custom resources valid against their CRDs" if not failed else f"{failed} invalid")
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--" not in args:
        sys.exit(__doc__)
    cut = args.index("--")
    sys.exit(main(args[:cut], args[cut + 1 :]))
