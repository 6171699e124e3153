#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests (helm template output, plain manifests).

Every document must pass one of two validators, and none may go unchecked:

* Kubernetes' own kinds: kubernetes-validate (the OpenAPI schemas of the Kubernetes
  release, `--strict`: unknown fields are errors) for every version given with
  --kubernetes-version. A kind it has no schema for is an error, not a warning.
* prometheus-operator's kinds (monitoring.coreos.com/v1 ServiceMonitor and
  PrometheusRule): the openAPIV3Schema of the CRD in --crds (the CRDs of the
  prometheus-operator Go module, example/prometheus-operator-crd/), with a real JSON-schema
  validator (jsonschema, Draft 2020-12 semantics for the OpenAPI v3 subset). Strict as the
  API server's field validation: an object schema that lists its properties rejects any
  other field unless it says x-kubernetes-preserve-unknown-fields.

Usage: check-rendering.py --kubernetes-version V [--kubernetes-version V2 ...]
                          [--crds DIR] [--expect-kind KIND ...] FILE|- ...
Exit 0 when every document passes; 1 with every problem listed otherwise.
"""

import argparse
import copy
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

CR_GROUPS = ("monitoring.coreos.com",)

# PyYAML resolves a plain `=` to YAML 1.1's "value" tag, which it cannot construct; in
# YAML 1.2 (Kubernetes' YAML) it is the string "=", as in the CRDs' enums.
yaml.SafeLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_crds(directory):
    """{(group, version, kind): openAPIV3Schema} of every CRD file in directory."""
    schemas = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(directory, name)) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec.get("versions", []):
                    schema = (version.get("schema") or {}).get("openAPIV3Schema")
                    if version.get("served") and schema:
                        schemas[(spec["group"], version["name"], spec["names"]["kind"])] = strict(schema)
    return schemas


def strict(schema):
    """The schema with additionalProperties: false on every object that lists its
    properties and neither allows additional ones nor preserves unknown fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def documents(path):
    text = sys.stdin.read() if path == "-" else open(path).read()
    for index, doc in enumerate(yaml.safe_load_all(text), 1):
        if doc:
            yield index, doc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", action="append", required=True)
    parser.add_argument("--crds", help="directory of CustomResourceDefinition YAML files")
    parser.add_argument("--expect-kind", action="append", default=[],
                        help="fail unless a document of this kind is present")
    parser.add_argument("--label", help="what the input is, for messages")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    crds = load_crds(args.crds) if args.crds else {}
    problems, checked, kinds = [], 0, set()
    for path in args.files:
        where_file = args.label or path
        for index, doc in documents(path):
            api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
            name = (doc.get("metadata") or {}).get("name", "?")
            where = f"{where_file}: document {index} ({kind} {name})"
            kinds.add(kind)
            group, _, version = api_version.rpartition("/")
            if group in CR_GROUPS:
                schema = crds.get((group, version, kind))
                if schema is None:
                    problems.append(f"{where}: no CRD schema for {api_version} {kind} (--crds)")
                    continue
                validator = jsonschema.Draft202012Validator(schema)
                errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
                for e in errors:
                    path_text = ".".join(str(p) for p in e.absolute_path) or "(root)"
                    problems.append(f"{where}: {path_text}: {e.message}")
                checked += 1
                continue
            for k8s in args.kubernetes_version:
                try:
                    kubernetes_validate.validate(doc, k8s, strict=True)
                except kubernetes_validate.SchemaNotFoundError:
                    problems.append(f"{where}: kubernetes-validate has no schema for {api_version} {kind} in {k8s}")
                except kubernetes_validate.ValidationError as e:
                    path_text = ".".join(str(p) for p in e.path) or "(root)"
                    problems.append(f"{where}: Kubernetes {k8s} (strict): {path_text}: {e.message}")
                checked += 1
    for kind in args.expect_kind:
        if kind not in kinds:
            problems.append(f"{args.label or ' '.join(args.files)}: no {kind} rendered")
    if problems:
        for p in problems:
            print(f"check-rendering: {p}", file=sys.stderr)
        sys.exit(1)
    label = args.label or " ".join(args.files)
    print(f"check-rendering: {label}: {checked} validations passed "
          f"(Kubernetes {', '.join(args.kubernetes_version)} strict; CRD schemas strict): {', '.join(sorted(kinds))}")


if __name__ == "__main__":
    main()
