import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command, Flags } from '@oclif/core';
import { fail } from '../lib/fail.ts';
import { parseDuration, formatCapture } from '../lib/bench/scenario.ts';
import { recordTap } from '../lib/bench/recorder.ts';
import { operatorAuth } from '../lib/cluster-secrets.ts';
import { DATA_DIR_HELP, resolveDataDir } from '../lib/data-dir.ts';
import { readState } from '../lib/state-file.ts';

export default class Record extends Command {
  static override summary = "Record a gateway's client sessions into a capture file for `pushctl bench`.";

  static override description = `Records connects, subscriptions, unsubscriptions, closes and their timing (no payloads, no tokens). Reads the gateway's GET /admin/tap on its admin listener for --duration (or until Ctrl-C), with the operator's admin token from --secrets FILE, else from the cluster recorded in the data dir.`;

  static override examples = ['<%= config.bin %> record --gateway http://127.0.0.1:8000 --out evening.jsonl'];

  static override flags = {
    gateway: Flags.string({ description: "the gateway's admin URL (`pushctl up` prints it: admin …)", required: true }),
    'data-dir': Flags.string({ description: DATA_DIR_HELP }),
    secrets: Flags.string({ description: "the cluster's secrets file (default: the data dir's)" }),
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
    let auth: { [header: string]: string };
    try {
      const dataDir = resolveDataDir(flags['data-dir']);
      const recorded = readState(dataDir)?.endpoints.secretsFile;
      auth = operatorAuth({ dataDir, ...(flags.secrets ? { secretsFile: flags.secrets } : {}), ...(recorded ? { recorded } : {}) });
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
      rec = await recordTap(flags.gateway.replace(/^ws/, 'http'), durationMs, ac.signal, auth);
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
