"""Read and write Avro single-object messages with fastavro, as a consumer or producer in
another language would (crates/schema/tests/interop.rs drives it).

    python interop.py SCHEMAS_DIR MESSAGES_DIR

For every NAME.rust in MESSAGES_DIR: check the C3 01 marker, find the writer schema by the
CRC-64-AVRO fingerprint of its Parsing Canonical Form (fastavro's own computation), decode the
body, re-encode the record with fastavro and write NAME.python (marker, fingerprint, body).
Prints one line per message: NAME, the record's full name. Exits non-zero naming the first
message it cannot read.
"""

import io
import json
import pathlib
import sys

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"


def main(schemas_dir: str, messages_dir: str) -> None:
    by_fingerprint = {}
    for path in sorted(pathlib.Path(schemas_dir).glob("*.avsc")):
        schema = json.loads(path.read_text())
        fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
        by_fingerprint[fp] = (path.name, fastavro.parse_schema(schema))
    for path in sorted(pathlib.Path(messages_dir).glob("*.rust")):
        message = path.read_bytes()
        if message[:2] != MAGIC:
            sys.exit(f"{path.name}: no single-object marker")
        fp = message[2:10]
        if fp not in by_fingerprint:
            sys.exit(f"{path.name}: no schema has fingerprint {fp.hex()}")
        file, schema = by_fingerprint[fp]
        body = io.BytesIO(message[10:])
        record = fastavro.schemaless_reader(body, schema, None)
        if body.read():
            sys.exit(f"{path.name}: bytes left after the record ({file})")
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, record)
        path.with_suffix(".python").write_bytes(MAGIC + fp + out.getvalue())
        print(path.stem, schema["name"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
