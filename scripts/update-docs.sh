#!/usr/bin/env bash
# Refresh the committed docs/dialect.md from the build's ODS-generated copy.
set -euo pipefail
cd "$(dirname "$0")/.."
ninja -C "${BUILD_DIR:-build}" nibble-docs
cp "${BUILD_DIR:-build}/docs/dialect.md" docs/dialect.md
