// bin/run.js runs under the pinned Node 24 however it is started: `npx
// pushctl`, or plain `pushctl` after `npm link`, which finds the machine's
// (older) Node first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

function nodeMajor(bin: string): number {
  return Number(execFileSync(bin, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
}

test('the launcher answers on the pinned Node 24, also when started by an older Node', () => {
  const viaPinned = execFileSync(process.execPath, [RUN, '--version'], { encoding: 'utf8' });
  assert.match(viaPinned, /node-v24\./);
  // The machine's own Node (Debian's, 20 here) is what `npm link`ed pushctl starts with.
  const system = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p) && nodeMajor(p) < 24);
  assert.ok(system, 'this machine has an older Node at /usr/bin/node, the case the launcher exists for');
  const viaOld = execFileSync(system, [RUN, '--version'], { encoding: 'utf8' });
  assert.match(viaOld, /node-v24\./, 'the launcher re-ran itself under the pinned Node');
});
