// Gathers what `status` and the live view show: control's topology, plus any
// role the state file knows about that control does not list (probed on its
// own /healthz, so a node that never registered still shows up, as down).
import { healthz } from './supervisor.ts';
import { fetchFailure } from './net-error.ts';
import { addressOf, rowsFromTopology, sortRows, type NodeRow } from './status-view.ts';
import type { ClusterState } from './state-file.ts';

export interface StatusSnapshot {
  control: string;
  rows: NodeRow[];
  /** Raw topology body as control returned it. */
  topology?: unknown;
  error?: string;
  at: number;
}

/** `auth`: the operator's admin-token header (control's every route needs it). */
export async function fetchTopology(controlUrl: string, auth: Record<string, string>, timeoutMs = 2_000): Promise<unknown> {
  const url = `${controlUrl.replace(/\/$/, '')}/v1/topology`;
  let res: Response;
  try {
    res = await fetch(url, { headers: auth, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(`control at ${controlUrl} is unreachable (${fetchFailure(err)})`);
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${url}: not JSON`);
  }
}

export async function collectStatus(controlUrl: string, auth: Record<string, string>, state?: ClusterState): Promise<StatusSnapshot> {
  const at = Date.now();
  let topology: unknown;
  let error: string | undefined;
  try {
    topology = await fetchTopology(controlUrl, auth);
  } catch (err) {
    error = (err as Error).message;
  }
  const rows = rowsFromTopology(topology, at);
  const listed = new Set(rows.map((r) => r.id));
  const unlisted = (state?.roles ?? []).filter((r) => !listed.has(r.id));
  const probed = await Promise.all(
    unlisted.map(async (r): Promise<NodeRow> => {
      const health = await healthz(r.healthUrl);
      return { id: r.id, role: r.role, address: addressOf(r.role, r.urls), health: health === 'ok' ? 'ok' : 'down' };
    }),
  );
  return { control: controlUrl, rows: sortRows([...rows, ...probed]), ...(topology !== undefined ? { topology } : {}), ...(error ? { error } : {}), at };
}
