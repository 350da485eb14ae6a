#!/usr/bin/env bash
# Installs the system packages the full cluster and the test suite use, from
# Debian's packages, when they are missing: nats-server and redis-server.
# Run as root (CI is); otherwise it prints what to install and exits 0, and
# `pushctl up` falls back to its embedded default.
set -euo pipefail

need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Kline history tests run a real Cassandra node from Maven Central's jars (scripts/cassandra/).
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
# pushctl chaos: namespaces and veths (ip), qdiscs (tc), random loss and partitions (nft, iptables).
command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v mvn >/dev/null 2>&1 || need+=(maven)
# The demo page's browser test (headless, driven by playwright-core).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The non-Node gRPC client test: Debian's Python with grpcio and protobuf.
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || need+=(python3-grpcio)
/usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1 || need+=(python3-protobuf)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]}; install them (Debian: apt-get install ${need[*]}) for the full cluster and the integration tests" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts packaged services on install; the project starts its own on free ports.
for svc in nats-server redis-server; do
  if printf '%s\n' "${need[@]}" | grep -qx "$svc" && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
