// Help reads well at 80 columns: every command has a whole-sentence summary,
// descriptions are prose that the terminal wraps (no hard breaks inside a
// sentence, which oclif then re-wraps raggedly), and no help line is wider
// than 80 columns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Config, Help } from '@oclif/core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** oclif's renderer with its formatting steps opened up, to read help as text. */
class HelpText extends Help {
  command(c: Parameters<Help['formatCommand']>[0]): string {
    return this.formatCommand(c);
  }
  list(cs: Parameters<Help['formatCommands']>[0]): string {
    return this.formatCommands(cs);
  }
}

test('every command: a one-sentence summary, prose without mid-sentence breaks, help within 80 columns', async () => {
  const config = await Config.load({ root: ROOT });
  const help = new HelpText(config, { maxWidth: 80, stripAnsi: true });
  assert.ok(config.commands.length >= 15, `commands found: ${config.commands.length}`);
  const problems: string[] = [];
  for (const c of config.commands) {
    const summary = (c.summary ?? c.description?.split('\n')[0] ?? '').trim();
    if (!/[.)]$/.test(summary)) problems.push(`${c.id}: summary is not a whole sentence: "${summary}"`);
    if (summary.length > 100) problems.push(`${c.id}: summary longer than 100 characters`);
    const lines = (c.description ?? '').split('\n');
    lines.forEach((line, i) => {
      const next = lines[i + 1];
      if (line.trim() && next?.trim() && /^[a-z(]/.test(next.trimStart()) && !/^\s/.test(next))
        problems.push(`${c.id}: description breaks a sentence after "${line.slice(-30)}"`);
    });
    for (const line of help.command(c).split('\n'))
      if (line.length > 80) problems.push(`${c.id}: help line of ${line.length} columns: ${line}`);
  }
  const listing = help.list(config.commands);
  for (const line of listing.split('\n')) if (line.length > 80) problems.push(`command list line of ${line.length} columns: ${line}`);
  assert.deepEqual(problems, []);
});

test('topics have their own titles, not the summary of one of their commands', async () => {
  const config = await Config.load({ root: ROOT });
  const chaos = config.topics.find((t) => t.name === 'chaos');
  const apply = config.commands.find((c) => c.id === 'chaos:apply');
  assert.ok(chaos?.description && apply);
  assert.notEqual(chaos.description, apply.summary);
  assert.match(chaos.description, /network/);
  assert.ok(config.topics.find((t) => t.name === 'history')?.description);
});
