"""Generate the per-kind parts of services/ingest/openapi.yaml from the Avro schemas: one path
per event kind (`/v1/events/<kind>`) whose request body is the record's JSON form, and one
component schema per record and named type, field for field as in schemas/*.avsc.

    python scripts/openapi/kinds.py          rewrite the generated regions in place
    python scripts/openapi/kinds.py --check  exit 1 if they differ from what would be written

The JSON form (services/ingest/src/api.rs) is the Avro record without `source` and
`schema_version`, with `event_id` and `occurred_at` optional; dates are `YYYY-MM-DD` strings,
instants RFC 3339, enums their symbols, unions with null optional, records whose fields are
all optional optional too. Regions are written in
YAML's JSON-compatible flow style, one schema per line, so no YAML library is needed.
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "services/ingest/openapi.yaml"

# Path segment -> schema file, as `event_kinds!` in services/ingest/src/api.rs.
KINDS = [
    ("releases", "prison_release.v1.avsc"),
    ("release-withdrawals", "release_withdrawn.v1.avsc"),
    ("admissions", "custody_admission.v1.avsc"),
    ("deaths", "person_died.v1.avsc"),
    ("identity-links", "identity_linked.v1.avsc"),
    ("identity-merges", "identity_merged.v1.avsc"),
    ("identity-unmerges", "identity_unmerged.v1.avsc"),
    ("referrals", "referral.v1.avsc"),
    ("treatment-starts", "treatment_start.v1.avsc"),
    ("treatment-discharges", "treatment_discharge.v1.avsc"),
    ("probation-allocations", "probation_allocated.v1.avsc"),
]
ENVELOPE = {"event_id", "occurred_at", "source", "schema_version"}
RESPONSES = {
    "202": "#/components/responses/Accepted",
    "207": "#/components/responses/Batch",
    "400": "#/components/responses/Problem",
    "401": "#/components/responses/Problem",
    "403": "#/components/responses/Problem",
    "413": "#/components/responses/Problem",
    "422": "#/components/responses/Problem",
    "429": "#/components/responses/Retry",
    "503": "#/components/responses/Retry",
}


def json_schema(avro, named):
    """The JSON Schema of an Avro type; named types go to `named` and are referenced."""
    if isinstance(avro, str):
        if avro in named or "." in avro:
            return {"$ref": f"#/components/schemas/{avro.split('.')[-1]}"}
        return {
            "string": {"type": "string"},
            "boolean": {"type": "boolean"},
            "int": {"type": "integer"},
            "long": {"type": "integer"},
            "float": {"type": "number"},
            "double": {"type": "number"},
            "bytes": {"type": "string"},
        }.get(avro) or {"$ref": f"#/components/schemas/{avro}"}
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        schema = (
            json_schema(branches[0], named)
            if len(branches) == 1
            else {"oneOf": [json_schema(b, named) for b in branches]}
        )
        # A union with null: the field may be absent or null (ingest reads both as no value).
        return {"anyOf": [schema, {"type": "null"}]} if "null" in avro else schema
    kind = avro["type"]
    logical = avro.get("logicalType")
    if logical == "date":
        return {"type": "string", "format": "date"}
    if logical in ("timestamp-micros", "timestamp-millis"):
        return {"type": "string", "format": "date-time"}
    if logical == "uuid":
        return {"type": "string", "format": "uuid"}
    if kind == "array":
        return {"type": "array", "items": json_schema(avro["items"], named)}
    if kind == "map":
        return {"type": "object", "additionalProperties": json_schema(avro["values"], named)}
    if kind == "enum":
        name = avro["name"]
        named.setdefault(name, {"type": "string", "enum": avro["symbols"], **doc(avro)})
        return {"$ref": f"#/components/schemas/{name}"}
    if kind == "record":
        name = avro["name"]
        if name not in named:
            named[name] = None  # reserve the name before the fields refer to it
            named[name] = record(avro, named, envelope=False)
        return {"$ref": f"#/components/schemas/{name}"}
    return json_schema(kind, named)


def doc(avro):
    return {"description": avro["doc"]} if "doc" in avro else {}


def optional(field):
    """Absent is allowed: a union with null, a default, or a record (inline, as every
    record field here is) whose own fields are all optional, read as the record with none of
    them (`person` with no identifiers; `#[serde(default)]` in api.rs)."""
    t = field["type"]
    if isinstance(t, dict) and t.get("type") == "record":
        return all(optional(f) for f in t["fields"])
    return (isinstance(t, list) and "null" in t) or "default" in field


def record(avro, named, envelope):
    properties, required = {}, []
    if envelope:
        # Optional, and like every optional field may be null (read as absent).
        properties["event_id"] = {
            "anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}],
            "description": "The source's id for the event; derived from the source and the content when absent or null.",
        }
        properties["occurred_at"] = {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
            "description": "When the source recorded it; the time of receipt when absent or null.",
        }
    for field in avro["fields"]:
        if envelope and field["name"] in ENVELOPE:
            continue
        schema = json_schema(field["type"], named)
        if "doc" in field:
            schema = {**schema, "description": field["doc"]} if "$ref" not in schema else {
                "allOf": [schema], "description": field["doc"]}
        properties[field["name"]] = schema
        if not optional(field):
            required.append(field["name"])
    out = {"type": "object", **doc(avro), "additionalProperties": False, "properties": properties}
    if required:
        out["required"] = required
    return out


def generate():
    named, events, paths = {}, {}, []
    for path, file in KINDS:
        avro = json.loads((ROOT / "schemas" / file).read_text())
        events[avro["name"] + "Event"] = record(avro, named, envelope=True)
        ref = f"#/components/schemas/{avro['name']}Event"
        body = {"oneOf": [{"$ref": ref}, {"type": "array", "items": {"$ref": ref}}]}
        paths.append(
            (
                f"/v1/events/{path}",
                {
                    "post": {
                        "operationId": "send_" + path.replace("-", "_"),
                        "summary": f"Send {path.replace('-', ' ')} ({avro['name']})",
                        "description": "One JSON object (answered on its own), a JSON array, or NDJSON (`Content-Type: application/x-ndjson`, one object per line). See \"Events\" in the description above for who may send what.",
                        "requestBody": {
                            "required": True,
                            "content": {
                                "application/json": {"schema": body},
                                "application/x-ndjson": {"schema": {"type": "string"}},
                            },
                        },
                        "responses": {s: {"$ref": r} for s, r in RESPONSES.items()},
                    }
                },
            )
        )
    path_lines = [f"  {json.dumps(p)}: {json.dumps(item)}" for p, item in paths]
    schemas = {**{k: v for k, v in sorted(named.items())}, **events}
    schema_lines = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in schemas.items()]
    return path_lines, schema_lines


def replace(text, marker, lines):
    begin = f"# BEGIN generated {marker} (scripts/openapi/kinds.py)"
    end = f"# END generated {marker}"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    indent = head[head.rfind("\n") + 1 :]
    return head + begin + "\n" + "\n".join(lines) + "\n" + indent + end + tail


def main():
    text = OPENAPI.read_text()
    path_lines, schema_lines = generate()
    new = replace(replace(text, "paths", path_lines), "schemas", schema_lines)
    if "--check" in sys.argv:
        if new != text:
            sys.exit(f"{OPENAPI} is out of date with schemas/: run python3 scripts/openapi/kinds.py")
        return
    OPENAPI.write_text(new)


if __name__ == "__main__":
    main()
