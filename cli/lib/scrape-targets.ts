// Where Prometheus scrapes a cluster: GET /metrics on every role's admin
// listener (audience "metrics": the metrics token, or the operator's admin
// token; see system/common/admin-http.ts). `pushctl up` prints them, writes
// them for Prometheus' file-based discovery next to the token file, and
// `pushctl status --json` lists them.
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterEndpoints } from './state-file.ts';
import type { ClusterSecrets } from '../../system/common/secrets.ts';
import { METRICS_PATH } from '../../system/common/metrics.ts';

export interface ScrapeTarget {
  id: string;
  role: string;
  /** The full scrape URL (the admin listener + /metrics). */
  url: string;
}

export const METRICS_AUDIENCE = 'Prometheus with the metrics token (secrets.json "metricsToken"), or the operator with the admin token';

/** Every admin listener of the cluster, as a scrape target. */
export function scrapeTargets(e: ClusterEndpoints): ScrapeTarget[] {
  const out: ScrapeTarget[] = [];
  const add = (id: string, role: string, base: string | undefined) => {
    if (base) out.push({ id, role, url: `${base.replace(/\/$/, '')}${METRICS_PATH}` });
  };
  (e.routerAdmins ?? []).forEach((u, i) => add(`router-${i + 1}`, 'router', u));
  add('control-1', 'control', e.control);
  for (const g of e.gateways) add(g.id, 'gateway', g.admin);
  for (const s of e.servers) add(s.id, 'server', s.admin);
  add('feed-1', 'feed', e.feed);
  return out;
}

/** Prometheus file_sd JSON: one group per target, labelled with its role and node id. */
export function fileSdGroups(targets: readonly ScrapeTarget[]): Array<{ targets: string[]; labels: Record<string, string> }> {
  return targets.map((t) => {
    const u = new URL(t.url);
    return { targets: [u.host], labels: { role: t.role, node: t.id } };
  });
}

export interface PrometheusFiles {
  dir: string;
  config: string;
  targets: string;
  /** The bearer token Prometheus sends (mode 0600); absent when the secrets have no metrics token. */
  tokenFile?: string;
}

export const prometheusDir = (dataDir: string) => join(dataDir, 'prometheus');
const TEMPLATE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'prometheus', 'prometheus.yml');

/**
 * Writes DATA_DIR/prometheus/: prometheus.yml (deploy/prometheus/prometheus.yml
 * as it is: it reads the two files beside it), targets.json and metrics-token,
 * so `prometheus --config.file=DATA_DIR/prometheus/prometheus.yml` scrapes this cluster.
 */
export function writePrometheusFiles(dataDir: string, targets: readonly ScrapeTarget[], secrets: ClusterSecrets): PrometheusFiles {
  const dir = prometheusDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const config = join(dir, 'prometheus.yml');
  copyFileSync(TEMPLATE, config);
  const targetsFile = join(dir, 'targets.json');
  writeFileSync(targetsFile, JSON.stringify(fileSdGroups(targets), null, 2) + '\n');
  if (!secrets.metricsToken) return { dir, config, targets: targetsFile };
  const tokenFile = join(dir, 'metrics-token');
  writeFileSync(tokenFile, secrets.metricsToken, { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
  return { dir, config, targets: targetsFile, tokenFile };
}

/** What `up` prints and `up --json` / `status --json` carry about scraping. */
export function metricsSummary(targets: readonly ScrapeTarget[], files?: PrometheusFiles): { json: object; lines: string[] } {
  const json = {
    path: METRICS_PATH,
    audience: METRICS_AUDIENCE,
    targets,
    ...(files ? { prometheusConfig: files.config, fileSd: files.targets, tokenFile: files.tokenFile ?? null } : {}),
  };
  const lines = [
    `metrics:  GET ${METRICS_PATH} on every admin listener; audience: ${METRICS_AUDIENCE}`,
    ...targets.map((t) => `  ${t.id.padEnd(12)}${t.url}`),
    ...(files ? [`  prometheus --config.file=${files.config}  (targets.json and ${files.tokenFile ? 'metrics-token' : 'NO metrics-token: add "metricsToken" to the secrets file'} beside it)`] : []),
  ];
  return { json, lines };
}

/** The files `up` wrote for Prometheus in a data dir, if it did. */
export function prometheusFiles(dataDir: string): PrometheusFiles | undefined {
  const dir = prometheusDir(dataDir);
  const config = join(dir, 'prometheus.yml');
  if (!existsSync(config)) return undefined;
  const tokenFile = join(dir, 'metrics-token');
  return { dir, config, targets: join(dir, 'targets.json'), ...(existsSync(tokenFile) ? { tokenFile } : {}) };
}
