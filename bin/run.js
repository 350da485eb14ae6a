#!/usr/bin/env node
// pushctl entry point. Commands are TypeScript files run directly by Node's
// native type stripping (Node ≥ 24): no build step, no ts-node, no tsx.
// Started by an older Node (plain `pushctl` after `npm link` finds the
// machine's Node first), it re-runs itself under the Node 24 that `npm ci`
// pinned in node_modules, so every way of starting it runs the same Node.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`pushctl: needs Node.js 24 (this is ${process.version}); run \`npm ci\` in the checkout, which brings it\n`);
    process.exit(1);
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  // Ctrl-C reaches the child through the terminal's process group; this process only waits for it to finish
  // stopping what it started, and passes on a SIGTERM sent to this process alone.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 2 : 1)));
} else {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
}
