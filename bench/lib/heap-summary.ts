// What a V8 heap snapshot (.heapsnapshot, taken after a full GC) holds,
// summed per kind and constructor name, and the difference of two such
// summaries divided by a connection count: "what one connection costs on the
// heap, object by object" for bench/conn-memory.ts.
import { readFileSync } from 'node:fs';

export interface HeapGroup {
  count: number;
  bytes: number;
}

export interface HeapSummary {
  totalBytes: number;
  nodes: number;
  /** Key: `<type>:<name>` (objects by constructor; strings, closures, arrays, code and hidden internals by type). */
  groups: Map<string, HeapGroup>;
}

/** Sums a snapshot's self sizes per type and constructor (JSON.parse of the whole file: fine for a few hundred MB). */
export function summarizeHeapSnapshot(path: string): HeapSummary {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const groups = new Map<string, HeapGroup>();
  let totalBytes = 0;
  const { nodes, strings } = snap;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!]!;
    const size = nodes[i + sizeAt]!;
    totalBytes += size;
    // Only objects (and native/hidden ones) are told apart by name; strings, numbers and code by type alone.
    const named = type === 'object' || type === 'native' || type === 'closure' || type === 'hidden' || type === 'object shape' || type === 'array';
    let name = named ? strings[nodes[i + nameAt]!]! : '';
    if (type === 'closure') name = name || '(anonymous)';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const g = groups.get(key);
    if (g) {
      g.count++;
      g.bytes += size;
    } else groups.set(key, { count: 1, bytes: size });
  }
  return { totalBytes, nodes: nodes.length / width, groups };
}

export interface PerConnectionRow {
  key: string;
  countPerConn: number;
  bytesPerConn: number;
}

/** (after − before) ÷ connections per group, largest first; groups below minBytesPerConn are summed into one row. */
export function perConnection(before: HeapSummary, after: HeapSummary, connections: number, minBytesPerConn = 8): PerConnectionRow[] {
  const rows: PerConnectionRow[] = [];
  let rest = 0;
  let restCount = 0;
  for (const [key, a] of after.groups) {
    const b = before.groups.get(key) ?? { count: 0, bytes: 0 };
    const bytes = (a.bytes - b.bytes) / connections;
    const count = (a.count - b.count) / connections;
    if (Math.abs(bytes) >= minBytesPerConn) rows.push({ key, countPerConn: count, bytesPerConn: bytes });
    else {
      rest += bytes;
      restCount += count;
    }
  }
  rows.sort((x, y) => y.bytesPerConn - x.bytesPerConn);
  rows.push({ key: '(everything else)', countPerConn: restCount, bytesPerConn: rest });
  return rows;
}
