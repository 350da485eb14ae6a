// HTTP load from autocannon in a process of its own (its event loop must not
// be the one serving or measuring), over a list of requests each connection
// cycles through (mixed symbols and intervals), optionally at a lower CPU
// priority. Bounded: the child is killed 60 s after its run should have
// ended. Returns autocannon's figures.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface HttpLoadOptions {
  url: string;
  connections: number;
  seconds: number;
  requests: Array<{ path: string; headers?: Record<string, string> }>;
  /** Niceness of the load generator (0 = as this process). */
  nice?: number;
  /** Per-request timeout, seconds. */
  timeoutSec?: number;
}

export interface HttpLoadResult {
  reqPerSec: number;
  requests: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  p50Ms: number;
  p99Ms: number;
  bytesPerRequest: number;
}

const CHILD = fileURLToPath(import.meta.url);

export function httpLoad(o: HttpLoadOptions): Promise<HttpLoadResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD, '--child', JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const killer = setTimeout(() => p.kill('SIGKILL'), (o.seconds + 60) * 1000);
    p.once('exit', (code) => {
      clearTimeout(killer);
      try {
        resolve(JSON.parse(out) as HttpLoadResult);
      } catch {
        reject(new Error(`autocannon child exited with ${code}: ${err.slice(0, 500)}`));
      }
    });
  });
}

if (process.argv[2] === '--child') {
  const o = JSON.parse(process.argv[3]!) as HttpLoadOptions;
  const { setPriority } = await import('node:os');
  if (o.nice) setPriority(o.nice);
  const { default: autocannon } = await import('autocannon');
  const r = await autocannon({ url: o.url, connections: o.connections, duration: o.seconds, timeout: o.timeoutSec ?? 30, requests: o.requests.map((q) => ({ method: 'GET' as const, path: q.path, ...(q.headers ? { headers: q.headers } : {}) })) });
  const result: HttpLoadResult = {
    reqPerSec: Math.round(r.requests.average),
    requests: r.requests.total,
    ok2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    bytesPerRequest: r.requests.total ? Math.round(r.throughput.total / r.requests.total) : 0,
  };
  process.stdout.write(JSON.stringify(result));
}
