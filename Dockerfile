# The market-push image: every role, and pushctl, on Node 24. One image for all
# roles; the Kubernetes manifests (deploy/k8s) pick the role per container:
#   node deploy/container/role.ts <router|control|server|gateway|feed>
# It is not built or tested in this repository's CI (no container runtime
# there): the manifests are rendered and schema-checked offline instead
# (test/integration/k8s-manifests.test.ts). Build: docker build -t market-push:dev .

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY . .
# As the README's `npm ci`: its prepare script generates proto/gen (not committed) with buf from the
# devDependencies, which are pruned afterwards.
RUN npm ci && npm prune --omit=dev

FROM node:24-bookworm-slim
# util-linux: prlimit, which a role uses to raise its soft open-file limit when
# Node's start-up did not (system/common/fd-limit.ts).
RUN apt-get update && apt-get install -y --no-install-recommends util-linux && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production WS_NO_BUFFER_UTIL=1
COPY --from=build /app /app
# The image's `node` user (uid 1000), which the manifests' securityContext also names.
USER 1000:1000
ENTRYPOINT []
CMD ["node", "deploy/container/role.ts", "router"]
