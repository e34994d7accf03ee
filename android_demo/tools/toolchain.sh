#!/usr/bin/env bash
# Finds (and on a fresh machine installs) what the phone core's host build needs, then prints
# shell assignments for it: KOTLINC, JUNIT_JAR, JSON_JAR. Exit 3, with what to install, when it cannot.
# Kotlin 2.4.20 is JetBrains' full compiler, shipped in npm's `kotlin-compiler` package (Debian's is 1.3);
# JUnit 5 and Android's own org.json for the JVM come from Debian (junit5, libandroid-json-java).
set -euo pipefail
KOTLIN_VERSION=2.4.20
CACHE="${EDGEKIT_TOOLCHAIN:-${XDG_CACHE_HOME:-$HOME/.cache}/edgekit-toolchain}"
KOTLINC="$CACHE/kotlin-compiler-$KOTLIN_VERSION/package/bin/kotlinc"
JUNIT_JAR=/usr/share/java/junit-platform-console-standalone.jar
JSON_JAR=/usr/share/java/com.android.json.jar

missing() { echo "phone core: $1" >&2; exit 3; }

command -v javac >/dev/null 2>&1 || missing "no JDK (javac): install a JDK 17 (Debian: openjdk-17-jdk-headless)"
if [ ! -x "$KOTLINC" ]; then
    command -v npm >/dev/null 2>&1 || missing "no Kotlin compiler at $KOTLINC and no npm to fetch it (npm pack kotlin-compiler@$KOTLIN_VERSION)"
    echo "phone core: fetching kotlin-compiler@$KOTLIN_VERSION (npm, ~90 MB) into $CACHE" >&2
    mkdir -p "$CACHE/kotlin-compiler-$KOTLIN_VERSION"
    ( cd "$CACHE/kotlin-compiler-$KOTLIN_VERSION" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null \
        && tar xzf "kotlin-compiler-$KOTLIN_VERSION.tgz" && rm "kotlin-compiler-$KOTLIN_VERSION.tgz" ) \
        || missing "could not fetch kotlin-compiler@$KOTLIN_VERSION with npm"
fi
if [ ! -f "$JUNIT_JAR" ] || [ ! -f "$JSON_JAR" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "phone core: installing junit5 and libandroid-json-java (apt)" >&2
        apt-get install -y -q junit5 libandroid-json-java >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q junit5 libandroid-json-java >/dev/null 2>&1; } \
            || missing "apt-get could not install junit5 libandroid-json-java"
    else
        missing "JUnit 5 and org.json missing: install Debian's junit5 and libandroid-json-java"
    fi
fi
echo "KOTLINC=$KOTLINC"
echo "JUNIT_JAR=$JUNIT_JAR"
echo "JSON_JAR=$JSON_JAR"
