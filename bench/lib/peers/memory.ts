// Resident memory of a process and its descendants (/proc, Linux), for the
// idle-memory-per-connection figure. Elsewhere it reports nothing.
import { readFileSync } from 'node:fs';
import { processTree } from '../proc-cpu.ts';

function rssOf(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s*(\d+)\s*kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** RSS in bytes of the process and every descendant, or undefined when unknown. */
export function treeRssBytes(pid: number): number | undefined {
  if (rssOf(pid) === undefined) return undefined;
  let sum = 0;
  for (const p of processTree(pid)) sum += rssOf(p) ?? 0;
  return sum;
}
