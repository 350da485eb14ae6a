// Small helpers for tests that talk to roles over HTTP: a role process seen
// through its HTTP URL, a JSON request, and polling until a probe yields.
import type { ChildProcess } from 'node:child_process';
import { adminHeaders, startRole as startRoleProcess } from './cluster.ts';

/** `url`: the role's client (or only) port; `adminUrl`: its admin listener. */
export async function startHttpRole(role: string, config: Record<string, unknown>): Promise<{ proc: ChildProcess; url: string; adminUrl: string; stop(): Promise<void> }> {
  const p = await startRoleProcess(role, config, 15_000);
  return { proc: p.proc, url: p.urls.http!, adminUrl: p.urls.admin ?? p.urls.http!, stop: () => p.kill() };
}

/** A JSON request; `auth` adds an Authorization header (default: the operator's admin token; `none` sends none). */
export async function http(
  method: string,
  url: string,
  body?: unknown,
  auth: Record<string, string> | 'none' = adminHeaders(),
): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(url, {
    method,
    headers: { ...(auth === 'none' ? {} : auth), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(3_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

/** Polls `probe` until it returns a value (not undefined/false), which it then returns. */
export async function waitForValue<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
