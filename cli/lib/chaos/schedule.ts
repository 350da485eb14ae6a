// Fault schedules for a run (a scenario's `faults:` list): process faults and
// profiles at given times, each recorded with when it really started and
// ended, so a benchmark can cut its figures into before / during / after.
// Everything a schedule applied is undone by stop(), and by chaos's own crash
// recovery if the process dies.
import type { BackendChoice } from './plan.ts';
import { BACKEND_CHOICES } from './plan.ts';
import { parseDuration, resolveProfile } from './profile.ts';
import { processFault, type ProcessFault } from './process-faults.ts';
import { applyProfile, clientPorts, type ActiveSession } from './session.ts';

export type FaultSpec =
  | { atMs: number; fault: ProcessFault; role: string }
  | { atMs: number; profile: string; target: string; backend: BackendChoice; forMs?: number };

export interface FaultEvent {
  spec: FaultSpec;
  /** ms since the schedule started. */
  startedMs?: number;
  endedMs?: number;
  ok: boolean;
  message: string;
}

const PROCESS_FAULTS: ProcessFault[] = ['kill', 'pause', 'resume', 'restart'];

/** Validates a `faults:` list (YAML already parsed). */
export function parseFaults(list: unknown): FaultSpec[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new Error('faults: a list of {at: 30s, kill: gateway-2} or {at: 10s, profile: NAME, target: clients, for: 20s}');
  return list.map((raw, i) => {
    const where = `faults[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw new Error(`${where}: a mapping`);
    const o = raw as Record<string, unknown>;
    const atMs = parseDuration(o.at ?? 0, `${where}.at`);
    const kinds = PROCESS_FAULTS.filter((k) => k in o);
    if (kinds.length + ('profile' in o ? 1 : 0) !== 1) throw new Error(`${where}: exactly one of ${PROCESS_FAULTS.join(', ')}, profile`);
    if (kinds.length === 1) {
      const fault = kinds[0]!;
      for (const k of Object.keys(o)) if (k !== 'at' && k !== fault) throw new Error(`${where}.${k}: unknown field for a process fault`);
      if (typeof o[fault] !== 'string') throw new Error(`${where}.${fault}: a role id such as gateway-2`);
      return { atMs, fault, role: o[fault] as string };
    }
    for (const k of Object.keys(o)) if (!['at', 'profile', 'target', 'backend', 'for'].includes(k)) throw new Error(`${where}.${k}: unknown field for a profile`);
    const backend = (o.backend ?? 'auto') as BackendChoice;
    if (!BACKEND_CHOICES.includes(backend)) throw new Error(`${where}.backend: one of ${BACKEND_CHOICES.join(', ')}`);
    resolveProfile(String(o.profile)); // fails early on an unknown profile
    return {
      atMs,
      profile: String(o.profile),
      target: String(o.target ?? 'clients'),
      backend,
      ...(o.for !== undefined ? { forMs: parseDuration(o.for, `${where}.for`) } : {}),
    };
  });
}

export interface RunningSchedule {
  events: FaultEvent[];
  /** Resolves when every fault has started (and every timed profile has ended). */
  settled: Promise<void>;
  /** Cancels what has not started and undoes what is applied. */
  stop(): Promise<void>;
}

export function startFaultSchedule(specs: FaultSpec[], o: { dataDir: string; print?: (l: string) => void }): RunningSchedule {
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);
  const print = o.print ?? (() => {});
  const timers = new Map<NodeJS.Timeout, () => void>();
  const sessions = new Map<ActiveSession, FaultEvent>();
  const events: FaultEvent[] = specs.map((spec) => ({ spec, ok: false, message: 'pending' }));
  let stopped = false;
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, Math.max(0, ms));
      timers.set(t, resolve);
    });

  const runOne = async (ev: FaultEvent) => {
    await wait(ev.spec.atMs - now());
    if (stopped) return;
    ev.startedMs = now();
    try {
      if ('fault' in ev.spec) {
        ev.message = await processFault(o.dataDir, ev.spec.fault, ev.spec.role);
        ev.ok = true;
        print(`fault at ${ev.startedMs} ms: ${ev.message}`);
        return;
      }
      const spec = ev.spec;
      const s = await applyProfile({
        dataDir: o.dataDir,
        profile: resolveProfile(spec.profile),
        target: spec.target,
        backend: spec.backend,
        dryRun: false,
        ports: spec.target === 'clients' ? clientPorts(o.dataDir) : [],
        print,
      });
      ev.ok = true;
      if (stopped) {
        // stop() ran while this was being applied.
        await s.revert();
        ev.endedMs = now();
        return;
      }
      sessions.set(s, ev);
      ev.message = `${spec.profile} on ${spec.target}: ${s.plan.report.map((r) => `${r.field}→${r.backend ?? 'none'}`).join(', ')}${s.session.proxies.length ? `; proxies ${s.session.proxies.map((p) => `${p.listen}→${p.target}`).join(', ')}` : ''}`;
      print(`fault at ${ev.startedMs} ms: ${ev.message}`);
      if (spec.forMs !== undefined) {
        await wait(spec.forMs);
        if (sessions.delete(s)) {
          await s.revert();
          ev.endedMs = now();
          print(`fault ended at ${ev.endedMs} ms: ${spec.profile} on ${spec.target} undone`);
        }
      }
    } catch (err) {
      ev.message = (err as Error).message;
      print(`fault at ${ev.startedMs} ms failed: ${ev.message}`);
    }
  };

  const settled = Promise.all(events.map(runOne)).then(() => {});
  return {
    events,
    settled,
    stop: async () => {
      stopped = true;
      // Pending waits end at once (their faults see `stopped` and do nothing).
      for (const [t, resolve] of timers) {
        clearTimeout(t);
        resolve();
      }
      timers.clear();
      for (const [s, ev] of sessions) {
        sessions.delete(s);
        await s.revert();
        ev.endedMs = now();
      }
      await settled;
    },
  };
}
