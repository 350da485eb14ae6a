import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { parseDuration, formatCapture } from '../lib/bench/scenario.ts';
import { recordTap } from '../lib/bench/recorder.ts';

export default class Record extends Command {
  static override description = `Record a gateway's client sessions (connects, subscriptions, unsubscriptions, closes and their
timing; no payloads, no tokens) into a capture file that a scenario can replay with \`pushctl bench\`.
Reads the gateway's GET /admin/tap for --duration (or until Ctrl-C).`;

  static override examples = ['<%= config.bin %> record --gateway http://127.0.0.1:7200 --out scenarios/captures/evening.jsonl --duration 5m'];

  static override flags = {
    gateway: Flags.string({ description: 'gateway HTTP URL (its admin/WebSocket port)', required: true }),
    out: Flags.string({ description: 'capture file to write (JSONL)', required: true }),
    duration: Flags.string({ description: 'how long to record, e.g. 60s', default: '60s' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Record);
    let durationMs: number;
    try {
      durationMs = parseDuration(flags.duration, '--duration');
    } catch (err) {
      fail(this, (err as Error).message, 2);
    }
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.stderr.write(`pushctl: recording ${flags.gateway} for ${durationMs / 1000} s (Ctrl-C stops early)\n`);
    let rec;
    try {
      rec = await recordTap(flags.gateway.replace(/^ws/, 'http'), durationMs, ac.signal);
    } catch (err) {
      fail(this, (err as Error).message, 1);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    mkdirSync(dirname(flags.out), { recursive: true });
    writeFileSync(flags.out, formatCapture(rec.sessions, { source: rec.source, recordedAt: rec.startedAt.toISOString(), durationMs }));
    this.log(`${rec.sessions.length} sessions, ${rec.events} events → ${flags.out}`);
    if (rec.privateDropped) this.log(`${rec.privateDropped} private stream subscriptions (orders) left out: replaying them needs users' tokens`);
    if (!rec.sessions.length) fail(this, 'no session was seen: nothing connected to that gateway while recording', 1);
  }
}
