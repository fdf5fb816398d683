"""Check JSON forms of events against ingest's OpenAPI request schemas
(services/ingest/tests/adapters.rs drives it).

    python check_forms.py OPENAPI_YAML DIR

DIR holds one file per event kind, `<kind>.json`: a JSON array of the JSON forms ingest
accepts for that kind. Each must validate against the request body schema of
`POST /v1/events/<kind>`. Prints the number checked; exits non-zero naming the first
that does not validate.
"""

import json
import pathlib
import sys

import jsonschema
import yaml


def main(openapi: str, forms_dir: str) -> None:
    document = yaml.safe_load(pathlib.Path(openapi).read_text())
    checked = 0
    for path in sorted(pathlib.Path(forms_dir).glob("*.json")):
        operation = document["paths"].get(f"/v1/events/{path.stem}", {}).get("post")
        if operation is None:
            sys.exit(f"{path.stem}: no POST /v1/events/{path.stem} in {openapi}")
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        schema = {**body, "components": document["components"]}
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        for i, form in enumerate(json.loads(path.read_text())):
            error = jsonschema.exceptions.best_match(validator.iter_errors(form))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path)
                sys.exit(f"{path.stem}[{i}] at {where or '(top)'}: {error.message}")
            checked += 1
    print(checked)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
