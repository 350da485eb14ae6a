// Reads what one client received on one topic, as a client application
// would: every jump in `seq` must come after a resync notice for that topic
// (sent since the previous event), and after a notice a state topic must get
// a fresh snapshot (depth: a depthSnapshot before any diff; ticker/kline: an
// event). Counted on the client side only.
import type { Received } from './proto-clients.ts';

export interface TopicAudit {
  topic: string;
  events: number;
  gaps: number;
  announcedGaps: number;
  notices: number;
  /** Human-readable problems: unannounced gaps, notices not followed by a fresh snapshot. */
  problems: string[];
}

export function auditTopic(r: Received, topic: string): TopicAudit {
  const out: TopicAudit = { topic, events: 0, gaps: 0, announcedGaps: 0, notices: 0, problems: [] };
  const notices = r.resyncs.filter((n) => n.topic === topic);
  out.notices = notices.length;
  const isDepth = topic.endsWith('@depth');
  const isState = isDepth || topic.endsWith('@ticker') || topic.includes('@kline');
  let last = 0;
  let prevIdx = -1;
  for (let i = 0; i < r.events.length; i++) {
    const e = r.events[i]!;
    if (e.topic !== topic) continue;
    out.events++;
    // A notice that came after the previous event of this topic and before this one (`at`: events received before it).
    const noticed = notices.some((n) => n.at > prevIdx && n.at <= i);
    // A depth snapshot restarts the book at its seq; any other event must follow on.
    const jumped = last > 0 && e.seq > last + 1;
    if (jumped) {
      out.gaps++;
      if (noticed) out.announcedGaps++;
      else out.problems.push(`${e.snapshot ? 'depth snapshot' : 'seq'} jumped ${last} → ${e.seq} with no resync notice`);
    }
    if (e.snapshot || e.seq > last) last = e.seq;
    prevIdx = i;
  }
  if (isState) {
    for (const n of notices) {
      const next = r.events.slice(n.at).find((e) => e.topic === topic);
      if (!next) out.problems.push(`no fresh snapshot after the resync notice (${n.reason})`);
      else if (isDepth && !next.snapshot) out.problems.push(`diff seq ${next.seq} after a resync notice, before a fresh depth snapshot`);
    }
  }
  return out;
}
