#!/usr/bin/env bash
# Resolves org.apache.cassandra:cassandra-all and its runtime dependencies from
# Maven Central into a cache folder (reused across runs), and prints the lib dir.
# Usage: scripts/cassandra/fetch.sh [version]   (env: CASSANDRA_VERSION, MP_CACHE_DIR)
set -euo pipefail

version="${1:-${CASSANDRA_VERSION:-5.0.8}}"
cache_root="${MP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/market-push}"
home="$cache_root/cassandra-$version"
lib="$home/lib"

if [ -f "$home/.complete" ]; then
  echo "$lib"
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "cassandra fetch: mvn is not installed (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "cassandra fetch: java is not installed (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }

mkdir -p "$home"
# A lock so two test runs fetching at once do not interleave their copies.
exec 9>"$home/.lock"
flock 9
if [ -f "$home/.complete" ]; then echo "$lib"; exit 0; fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>market-push</groupId>
  <artifactId>cassandra-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
POM
rm -rf "$lib.partial"
echo "cassandra fetch: resolving cassandra-all $version from Maven Central into $lib" >&2
mvn -B -q -f "$work/pom.xml" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
  -DoutputDirectory="$lib.partial" -DincludeScope=runtime >&2
rm -rf "$lib"
mv "$lib.partial" "$lib"
touch "$home/.complete"
echo "$lib"
