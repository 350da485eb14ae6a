#!/usr/bin/env bash
# Installs the system packages the full cluster and the test suite use, from
# Debian's packages, when they are missing: nats-server and redis-server, openssl,
# nginx with nchan for bench:peers, …
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
# deploy/k8s is rendered offline with `kubectl kustomize` (test/integration/k8s-manifests.test.ts). Debian's
# kubernetes-client is kubectl 1.20 (kustomize v2.0.3): the kustomizations use only fields it reads too.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
# pushctl doctor / tune and the roles' open-file limit: sysctl (procps), prlimit (util-linux).
command -v sysctl >/dev/null 2>&1 || [ -x /usr/sbin/sysctl ] || need+=(procps)
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
# pushctl up --tls: the self-signed certificate is made with the openssl CLI (cli/lib/self-signed-cert.ts).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The demo page's browser test (headless, driven by playwright-core).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The non-Node gRPC client test: Debian's Python with grpcio and protobuf.
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || need+=(python3-grpcio)
/usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1 || need+=(python3-protobuf)
# bench:peers runs its own nginx + nchan (own config, pid file and ports under a temp dir).
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || need+=(libnginx-mod-nchan)

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
# Likewise Debian's nginx service, when this run installed nginx: bench:peers never uses it.
if printf '%s\n' "${need[@]}" | grep -qx nginx-light; then
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
  if [ -x /etc/init.d/nginx ]; then /etc/init.d/nginx stop >/dev/null 2>&1 || true; fi
  command -v update-rc.d >/dev/null 2>&1 && update-rc.d nginx disable >/dev/null 2>&1 || true
fi
