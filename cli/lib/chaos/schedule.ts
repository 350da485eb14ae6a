// Fault schedules for a run (a scenario's `faults:` list): process faults and
// profiles at given times, each recorded with when it really started and
// ended, so a benchmark can cut its figures into before / during / after.
// Everything a schedule applied is undone by stop() (profiles reverted,
// roles it paused resumed), and by chaos's own crash recovery if the process
// dies. A kill stays a kill.
import type { BackendChoice } from './plan.ts';
import { BACKEND_CHOICES } from './plan.ts';
import { parseDuration, resolveProfile, type Profile } from './profile.ts';
import { processFault, type ProcessFault } from './process-faults.ts';
import { applyProfile, clientPorts } from './session.ts';

export type FaultSpec =
  /** `forMs` only on pause: the schedule resumes the role after it. */
  | { atMs: number; fault: ProcessFault; role: string; forMs?: number }
  | { atMs: number; profile: string; target: string; backend: BackendChoice; forMs?: number };

/** One line naming a fault, for logs, dashboards and reports. */
export function describeFault(spec: FaultSpec): string {
  const dur = spec.forMs !== undefined ? ` for ${spec.forMs / 1000} s` : '';
  return 'fault' in spec ? `${spec.fault} ${spec.role}${dur}` : `${spec.profile} on ${spec.target}${dur}`;
}

/**
 * Applies profiles whose target is `clients` to a link that already exists (a bench's agents run behind it
 * from the start), instead of a fresh namespace nobody is in. Returns what it did and how to undo it.
 */
export interface ClientShaper {
  shape(profile: Profile, backend: BackendChoice): Promise<{ message: string; revert(): Promise<unknown> }>;
}

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
      for (const k of Object.keys(o))
        if (k !== 'at' && k !== fault && !(k === 'for' && fault === 'pause'))
          throw new Error(`${where}.${k}: unknown field for a process fault${k === 'for' ? ' (only pause takes `for`: it resumes the role after it)' : ''}`);
      if (typeof o[fault] !== 'string') throw new Error(`${where}.${fault}: a role id such as gateway-2`);
      return { atMs, fault, role: o[fault] as string, ...(o.for !== undefined ? { forMs: parseDuration(o.for, `${where}.for`) } : {}) };
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

export interface ScheduleOptions {
  dataDir: string;
  print?: (l: string) => void;
  /** Epoch ms the `at` times count from (a bench's start barrier); default: now. */
  origin?: number;
  /** Where `target: clients` profiles go (a bench's agent link); default: a new namespace per profile. */
  clients?: ClientShaper;
}

export function startFaultSchedule(specs: FaultSpec[], o: ScheduleOptions): RunningSchedule {
  const t0 = performance.now() - (o.origin !== undefined ? Date.now() - o.origin : 0);
  const now = () => Math.round(performance.now() - t0);
  const print = o.print ?? (() => {});
  const timers = new Map<NodeJS.Timeout, () => void>();
  /** What is applied and must be undone: profiles, and roles paused and not yet resumed. */
  const sessions = new Map<{ revert(): Promise<unknown> }, FaultEvent>();
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
  // Timers may fire a millisecond early by this clock: nothing starts or ends before its time.
  const waitUntil = async (atMs: number) => {
    while (!stopped && now() < atMs) await wait(Math.max(1, atMs - now()));
  };

  const runOne = async (ev: FaultEvent) => {
    await waitUntil(ev.spec.atMs);
    if (stopped) return;
    ev.startedMs = now();
    try {
      if ('fault' in ev.spec) {
        const { fault, role } = ev.spec;
        ev.message = await processFault(o.dataDir, fault, role);
        ev.ok = true;
        print(`fault at ${ev.startedMs} ms: ${ev.message}`);
        if (fault === 'pause') {
          // Resumed after `for`, or by stop(): a schedule never leaves a role stopped.
          const undo = { revert: async () => void (await processFault(o.dataDir, 'resume', role).catch(() => {})) };
          sessions.set(undo, ev);
          if (stopped && sessions.delete(undo)) {
            // stop() ran while the pause was being applied.
            await undo.revert();
            ev.endedMs = now();
            return;
          }
          if (ev.spec.forMs !== undefined) {
            await waitUntil(now() + ev.spec.forMs);
            if (sessions.delete(undo)) {
              await undo.revert();
              ev.endedMs = now();
              print(`fault ended at ${ev.endedMs} ms: ${role} resumed`);
            }
          }
        }
        // A scheduled resume ends the pause of the same role (its window for before/during/after).
        if (fault === 'resume')
          for (const [u, e] of sessions)
            if ('fault' in e.spec && e.spec.fault === 'pause' && e.spec.role === role) {
              sessions.delete(u);
              e.endedMs = ev.startedMs;
            }
        return;
      }
      const spec = ev.spec;
      let s: { revert(): Promise<unknown> };
      if (spec.target === 'clients' && o.clients) {
        const shaped = await o.clients.shape(resolveProfile(spec.profile), spec.backend);
        s = shaped;
        ev.message = `${spec.profile} on the bench's clients: ${shaped.message}`;
      } else {
        const a = await applyProfile({
          dataDir: o.dataDir,
          profile: resolveProfile(spec.profile),
          target: spec.target,
          backend: spec.backend,
          dryRun: false,
          ports: spec.target === 'clients' ? clientPorts(o.dataDir) : [],
          print,
        });
        s = a;
        ev.message = `${spec.profile} on ${spec.target}: ${a.plan.report.map((r) => `${r.field}→${r.backend ?? 'none'}`).join(', ')}${a.session.proxies.length ? `; proxies ${a.session.proxies.map((p) => `${p.listen}→${p.target}`).join(', ')}` : ''}`;
      }
      ev.ok = true;
      if (stopped) {
        // stop() ran while this was being applied.
        await s.revert();
        ev.endedMs = now();
        return;
      }
      sessions.set(s, ev);
      print(`fault at ${ev.startedMs} ms: ${ev.message}`);
      if (spec.forMs !== undefined) {
        await waitUntil(now() + spec.forMs);
        if (sessions.delete(s)) {
          await s.revert();
          ev.endedMs = now();
          print(`fault ended at ${ev.endedMs} ms: ${spec.profile} on ${spec.target} undone`);
        }
      }
    } catch (err) {
      ev.ok = false;
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
        try {
          await s.revert();
        } catch (err) {
          print(`undoing ${describeFault(ev.spec)} failed: ${(err as Error).message} (\`pushctl chaos off\` retries)`);
        }
        ev.endedMs = now();
      }
      await settled;
    },
  };
}
