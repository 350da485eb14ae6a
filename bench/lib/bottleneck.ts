// What bound a measured window. A throughput figure belongs to the system
// under test only when the system was the limit: a load-client process at a
// full core, or a machine whose CPUs were all busy (others' work included),
// make it a figure of the harness or of the machine. Each bench that reports
// a ceiling says which it was.

/** A single-threaded process at or above this share of one core is taken as CPU-bound. */
export const SATURATED_CORE = 0.9;
/** The machine counts as full when its busy CPU is at least this share of its cores. */
export const MACHINE_FULL = 0.9;

export type LimitKind = 'load-clients' | 'process' | 'machine' | 'none';

export interface Bottleneck {
  limitedBy: LimitKind;
  /** The process that was at a full core (load-clients, process). */
  process?: string;
  /** Its cores, or the machine's busy cores (machine). */
  cores?: number;
  /** The bench's own processes' cores and the machine's busy cores over the window. */
  ownCores: number;
  hostCores: number | null;
  note: string;
}

/**
 * `cpu`: cores per process over the window (names starting with `loadPrefix` are the load generator);
 * `hostCores`: the whole machine's busy cores over the same window (host-cpu.ts), null if unknown.
 * A saturated load client is named first: it is the finding that most misleads a reader.
 */
export function findBottleneck(cpu: Record<string, number | null>, hostCores: number | null, cpus: number, loadPrefix = 'load-clients'): Bottleneck {
  const entries = Object.entries(cpu).filter((e): e is [string, number] => e[1] != null);
  const ownCores = round(entries.reduce((a, [, c]) => a + c, 0));
  const base = { ownCores, hostCores };
  const busiest = (list: Array<[string, number]>) => list.reduce<[string, number] | undefined>((a, e) => (!a || e[1] > a[1] ? e : a), undefined);
  const load = busiest(entries.filter(([n]) => n.startsWith(loadPrefix)));
  if (load && load[1] >= SATURATED_CORE) {
    return {
      ...base, limitedBy: 'load-clients', process: load[0], cores: load[1],
      note: `${load[0]} used ${load[1]} of a core (one thread): the figure measures the load clients more than the server — a lower bound; more load processes (--load-procs) on more cores would raise it`,
    };
  }
  const own = busiest(entries.filter(([n]) => !n.startsWith(loadPrefix)));
  if (own && own[1] >= SATURATED_CORE) {
    return { ...base, limitedBy: 'process', process: own[0], cores: own[1], note: `${own[0]} used ${own[1]} of a core: its own thread is the limit` };
  }
  if (hostCores != null && hostCores >= MACHINE_FULL * cpus) {
    const others = round(Math.max(0, hostCores - ownCores));
    return {
      ...base, limitedBy: 'machine', cores: hostCores,
      note: `the machine's ${cpus} CPUs were ${Math.round((hostCores / cpus) * 100)} % busy (this bench's processes ${ownCores} cores, everything else ${others}): no process reached a core, the CPUs ran out`,
    };
  }
  return {
    ...base, limitedBy: 'none',
    note: `no process reached a core${hostCores != null ? ` and the machine had idle CPU (${hostCores} of ${cpus} cores busy)` : ''}: flow control (a credit window, socket buffers) or waiting bound the rate, not CPU`,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;
