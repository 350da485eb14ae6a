// Generates proto/gen from proto/*.proto with buf and protoc-gen-es, both
// shipped inside npm packages: nothing is downloaded at install time.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'node_modules', '.bin');
rmSync(join(root, 'proto', 'gen'), { recursive: true, force: true });
execFileSync(join(bin, 'buf'), ['generate'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
});
