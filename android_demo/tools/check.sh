#!/usr/bin/env bash
# `make test`'s phone part: the core's JUnit tests and the host runner (`check.sh build`: the runner
# only, for `make demo`), or a clear skip where this machine lacks what they need (tools/toolchain.sh
# says what to install).
set -uo pipefail
cd "$(dirname "$0")/.."
if ! toolchain=$(bash tools/toolchain.sh); then
    echo "phone core tests skipped (see the line above)"
    exit 0
fi
eval "$toolchain"
targets="test host"
[ "${1:-test}" = build ] && targets=host
make --no-print-directory KOTLINC="$KOTLINC" JUNIT_JAR="$JUNIT_JAR" JSON_JAR="$JSON_JAR" $targets
