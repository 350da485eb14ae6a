// The foreground view of `pushctl up`: polls control's topology every second
// and shows it with Ink on a terminal; elsewhere (pipes, CI logs) prints the
// table when the set of nodes or their health changes, and events as lines.
import React from 'react';
import { render, type Instance } from 'ink';
import { collectStatus, type StatusSnapshot } from './topology.ts';
import { formatTable, StatusView, type NodeRow } from './status-view.ts';
import type { ClusterState } from './state-file.ts';

export interface LiveViewOptions {
  title: string;
  /** The terminal Ink draws on (default process.stdout). */
  stdout?: NodeJS.WriteStream;
  state: ClusterState;
  /** The operator's admin-token header for control. */
  auth: Record<string, string>;
  /** Ink on a terminal; plain lines otherwise. */
  tty: boolean;
  /** --json: stdout carries only the endpoints object; events go to stderr, no table. */
  json: boolean;
  intervalMs?: number;
}

export class LiveView {
  #opts: LiveViewOptions;
  #timer: NodeJS.Timeout | undefined;
  #ink: Instance | undefined;
  #events: string[] = [];
  /** Ids whose process died: shown as "died" whatever control still says. */
  #dead = new Set<string>();
  #last: StatusSnapshot | undefined;
  #lastSignature = '';
  #polling = false;
  #stopped = false;
  // Ink redraws by erasing as many lines as it last wrote; after a resize the old frame has re-wrapped to a
  // different number of lines, so pieces of it stay behind. A resize clears the screen and draws anew.
  #onResize = () => {
    if (!this.#ink) return;
    this.#ink.clear();
    this.#stdout.write('\x1b[2J\x1b[3J\x1b[H');
    this.#ink.rerender(this.#element());
  };

  constructor(opts: LiveViewOptions) {
    this.#opts = opts;
  }

  get #stdout(): NodeJS.WriteStream {
    return this.#opts.stdout ?? process.stdout;
  }

  start(): void {
    if (this.#opts.tty && !this.#opts.json) {
      // interactive: the caller already decided this is a terminal; Ink would otherwise turn itself off
      // whenever a CI variable is set (drawing only at exit), even on a real TTY.
      this.#ink = render(this.#element(), { stdout: this.#stdout, exitOnCtrlC: false, patchConsole: false, maxFps: 10, interactive: true });
      this.#stdout.on('resize', this.#onResize);
    }
    void this.#poll();
    this.#timer = setInterval(() => void this.#poll(), this.#opts.intervalMs ?? 1_000);
  }

  /** Something the operator must see, e.g. a child that died. */
  event(message: string, deadIds: string[] = []): void {
    for (const id of deadIds) this.#dead.add(id);
    const line = `${new Date().toLocaleTimeString('en-GB')} ${message}`;
    this.#events.push(line);
    if (this.#ink) this.#ink.rerender(this.#element());
    else if (this.#opts.json) process.stderr.write(line + '\n');
    else process.stdout.write(line + '\n');
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    try {
      this.#last = await collectStatus(this.#opts.state.endpoints.control, this.#opts.auth, this.#opts.state);
    } finally {
      this.#polling = false;
    }
    if (this.#stopped) return;
    if (this.#ink) return this.#ink.rerender(this.#element());
    if (this.#opts.json) return;
    const rows = this.#rows();
    const signature = rows.map((r) => `${r.id}:${r.health}`).join(',') + (this.#last.error ?? '');
    if (signature === this.#lastSignature) return;
    this.#lastSignature = signature;
    const out = [...formatTable(rows)];
    if (this.#last.error) out.push(this.#last.error);
    process.stdout.write(out.join('\n') + '\n');
  }

  #rows(): NodeRow[] {
    const rows = this.#last?.rows ?? [];
    return rows.map((r) => (this.#dead.has(r.id) ? { ...r, health: 'died' } : r));
  }

  #element(): React.ReactElement {
    return React.createElement(StatusView, {
      title: this.#opts.title,
      rows: this.#rows(),
      events: this.#events,
      ...(this.#last?.error ? { error: this.#last.error } : {}),
      ...(this.#last ? { updatedAt: this.#last.at } : {}),
    });
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#stdout.off('resize', this.#onResize);
    if (this.#ink) {
      this.#ink.rerender(this.#element());
      this.#ink.unmount();
      this.#ink = undefined;
    }
  }
}
