#!/usr/bin/env bash
# Regenerates Sources/Wire/Generated from proto/. Needs protoc (Debian: protobuf-compiler) and
# protoc-gen-swift from swift-protobuf 1.39.0 on PATH or in $PROTOC_GEN_SWIFT:
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf && git checkout 1.39.0 \
#     && swift build -c release --product protoc-gen-swift
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift)}
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=proto \
  --swift_opt=Visibility=Internal --swift_out=Sources/Wire/Generated proto/hocvu/wire/v1/*.proto
