//! Avro's Parsing Canonical Form, written here because apache-avro's is not the
//! specification's: the crate keeps `logicalType` (and so `{"type": "string", "logicalType":
//! "uuid"}` stays an object), where the specification keeps only the attributes that affect
//! parsing. Fingerprints of the crate's form match no other implementation (Java's
//! `SchemaNormalization`, `fastavro`), so a consumer using Avro's standard single-object
//! decoder could not find our schemas.
//!
//! The rules (Avro specification, "Parsing Canonical Form for Schemas"): primitives in their
//! simple form; names replaced by full names; only `type`, `name`, `fields`, `symbols`,
//! `items`, `values` and `size` kept, in that order; a named type written in full once and by
//! its full name after; no whitespace. The fingerprint is CRC-64-AVRO (Rabin) of the form's
//! bytes, written little-endian on the wire.

use std::collections::HashSet;

use serde_json::Value;

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Parsing Canonical Form of a schema given as JSON text.
pub fn canonical_form(schema: &str) -> Result<String, String> {
    let value: Value = serde_json::from_str(schema).map_err(|e| e.to_string())?;
    let mut out = String::new();
    write(&value, None, &mut HashSet::new(), &mut out)?;
    Ok(out)
}

/// The CRC-64-AVRO fingerprint of a schema's canonical form, in wire (little-endian) order.
pub fn fingerprint(schema: &str) -> Result<[u8; 8], String> {
    use apache_avro::rabin::Rabin;
    use digest::Digest;
    let form = canonical_form(schema)?;
    let digest = Rabin::digest(form.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    Ok(out)
}

/// The full name of `name` in `namespace`, and the namespace it sets for what it encloses.
fn full_name(name: &str, namespace: Option<&str>) -> (String, Option<String>) {
    match name.rsplit_once('.') {
        Some((ns, _)) => (name.to_owned(), Some(ns.to_owned())),
        None => match namespace.filter(|n| !n.is_empty()) {
            Some(ns) => (format!("{ns}.{name}"), Some(ns.to_owned())),
            None => (name.to_owned(), None),
        },
    }
}

fn quoted(s: &str) -> String {
    // Names and symbols are [A-Za-z_][A-Za-z0-9_]*, dotted: nothing to escape, but JSON's
    // quoting keeps the form valid JSON whatever a schema holds.
    Value::String(s.to_owned()).to_string()
}

fn write(
    schema: &Value,
    namespace: Option<&str>,
    defined: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), String> {
    match schema {
        Value::String(name) => {
            if PRIMITIVES.contains(&name.as_str()) {
                out.push_str(&quoted(name));
            } else {
                out.push_str(&quoted(&full_name(name, namespace).0));
            }
            Ok(())
        }
        Value::Array(branches) => {
            out.push('[');
            for (i, branch) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(branch, namespace, defined, out)?;
            }
            out.push(']');
            Ok(())
        }
        Value::Object(map) => {
            let kind = map.get("type").ok_or("a schema object has no \"type\"")?;
            let Value::String(kind) = kind else {
                // {"type": {...}}: the attributes around the nested schema do not parse.
                return write(kind, namespace, defined, out);
            };
            match kind.as_str() {
                "record" | "error" | "enum" | "fixed" => {
                    let name = map
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or("a named schema has no \"name\"")?;
                    let own = map.get("namespace").and_then(Value::as_str).or(namespace);
                    let (full, inner) = full_name(name, own);
                    if !defined.insert(full.clone()) {
                        out.push_str(&quoted(&full));
                        return Ok(());
                    }
                    out.push_str(&format!(
                        "{{\"name\":{},\"type\":{}",
                        quoted(&full),
                        quoted(kind)
                    ));
                    match kind.as_str() {
                        "enum" => {
                            let symbols = map
                                .get("symbols")
                                .and_then(Value::as_array)
                                .ok_or("an enum has no \"symbols\"")?;
                            let symbols: Vec<String> = symbols
                                .iter()
                                .map(|s| s.as_str().map(quoted).ok_or("a symbol is not a string"))
                                .collect::<Result<_, _>>()?;
                            out.push_str(&format!(",\"symbols\":[{}]", symbols.join(",")));
                        }
                        "fixed" => {
                            let size = map
                                .get("size")
                                .and_then(Value::as_u64)
                                .ok_or("a fixed has no integer \"size\"")?;
                            out.push_str(&format!(",\"size\":{size}"));
                        }
                        _ => {
                            let fields = map
                                .get("fields")
                                .and_then(Value::as_array)
                                .ok_or("a record has no \"fields\"")?;
                            out.push_str(",\"fields\":[");
                            for (i, field) in fields.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let field_name = field
                                    .get("name")
                                    .and_then(Value::as_str)
                                    .ok_or("a field has no \"name\"")?;
                                let field_type =
                                    field.get("type").ok_or("a field has no \"type\"")?;
                                out.push_str(&format!(
                                    "{{\"name\":{},\"type\":",
                                    quoted(field_name)
                                ));
                                write(field_type, inner.as_deref(), defined, out)?;
                                out.push('}');
                            }
                            out.push(']');
                        }
                    }
                    out.push('}');
                    Ok(())
                }
                "array" => {
                    let items = map.get("items").ok_or("an array has no \"items\"")?;
                    out.push_str("{\"type\":\"array\",\"items\":");
                    write(items, namespace, defined, out)?;
                    out.push('}');
                    Ok(())
                }
                "map" => {
                    let values = map.get("values").ok_or("a map has no \"values\"")?;
                    out.push_str("{\"type\":\"map\",\"values\":");
                    write(values, namespace, defined, out)?;
                    out.push('}');
                    Ok(())
                }
                // A primitive with attributes (a logical type, say): its simple form.
                _ => write(&Value::String(kind.clone()), namespace, defined, out),
            }
        }
        _ => Err(format!("{schema} is not a schema")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_types_and_doc_are_stripped_names_are_full_and_written_once() {
        let schema = r#"{
            "type": "record", "name": "Outer", "namespace": "a.b", "doc": "ignored",
            "fields": [
                {"name": "id", "type": {"type": "string", "logicalType": "uuid"}, "doc": "x"},
                {"name": "when", "type": {"type": "long", "logicalType": "timestamp-micros"}, "default": 0},
                {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"], "default": "A"}},
                {"name": "again", "type": ["null", "Kind"]},
                {"name": "other", "type": {"type": "fixed", "name": "c.Hash", "size": 8}},
                {"name": "list", "type": {"type": "array", "items": "c.Hash"}},
                {"name": "tags", "type": {"type": "map", "values": {"type": "int"}}}
            ]
        }"#;
        assert_eq!(
            canonical_form(schema).unwrap(),
            concat!(
                r#"{"name":"a.b.Outer","type":"record","fields":["#,
                r#"{"name":"id","type":"string"},"#,
                r#"{"name":"when","type":"long"},"#,
                r#"{"name":"kind","type":{"name":"a.b.Kind","type":"enum","symbols":["A","B"]}},"#,
                r#"{"name":"again","type":["null","a.b.Kind"]},"#,
                r#"{"name":"other","type":{"name":"c.Hash","type":"fixed","size":8}},"#,
                r#"{"name":"list","type":{"type":"array","items":"c.Hash"}},"#,
                r#"{"name":"tags","type":{"type":"map","values":"int"}}]}"#
            )
        );
    }

    #[test]
    fn fingerprints_are_those_other_implementations_compute() {
        // As fastavro 1.13.1 computes them (`fingerprint(form, "CRC-64-AVRO")`, wire order).
        let hex = |fp: [u8; 8]| fp.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(fingerprint(r#""int""#).unwrap()), "8f5c393f1ad57572");
        assert_eq!(
            hex(fingerprint(r#"{"type": "string"}"#).unwrap()),
            "c70345637248018f"
        );
        let died = include_str!("../../../schemas/person_died.v1.avsc");
        assert_eq!(hex(fingerprint(died).unwrap()), "b3de616ffaf7d03b");
    }
}
