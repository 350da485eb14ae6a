// Generates proto/gen from proto/*.proto with buf and protoc-gen-es, both
// shipped inside npm packages: nothing is downloaded at install time.
// Besides the code, a FileDescriptorSet of the client-facing API (PushService,
// KlineHistory and the messages they use, with their comments) for the
// gateways' gRPC server reflection (system/gateway/grpc-reflection.ts).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'node_modules', '.bin');
const buf = (args: string[]) =>
  execFileSync(join(bin, 'buf'), args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
  });
rmSync(join(root, 'proto', 'gen'), { recursive: true, force: true });
buf(['generate']);
// Imports (market.proto) included; the cluster-internal messages (internal.proto) left out.
buf(['build', '--as-file-descriptor-set', '--path', 'proto/client.proto', '--path', 'proto/history.proto', '-o', 'proto/gen/api-descriptors.binpb']);
