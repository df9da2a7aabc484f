#!/usr/bin/env bash
# Regenerates Sources/Portal/OpenAPIDocument.swift from docs/api/openapi.json (the daemon serves the
# embedded copy, so the installed binary needs no data files). PortalTests fails when they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  printf '/// The learning-app API'"'"'s OpenAPI 3.1 document, served at `/api/v1/openapi.json`.\n///\n'
  printf '/// Generated from docs/api/openapi.json (the copy readers and tools use) by\n'
  printf '/// `ops/generate-openapi.sh`; a test fails when the two differ.\n'
  printf 'enum OpenAPIDocument {\n    static let json = #"""\n'
  cat docs/api/openapi.json
  printf '"""#\n}\n'
} > Sources/Portal/OpenAPIDocument.swift
