// Starts real nats-server / redis-server processes on free ports for
// integration tests, and stops them (and their data dirs) afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningServer {
  url: string;
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Spawns a server tied to this process: a shell holds our stdin pipe and
 * kills the server when the pipe closes, so a killed test run leaves no
 * nats-server or redis-server behind.
 */
function spawnTied(cmd: string, args: string[]): ChildProcess {
  const script = `"$@" & child=$!; trap 'kill $child 2>/dev/null; wait $child' EXIT INT TERM; read -r _; exit 0`;
  return spawn('bash', ['-c', script, 'tied', cmd, ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
}

async function stopProc(proc: ChildProcess, dir?: string): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(t);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}

async function requireBinary(name: string): Promise<void> {
  const found = await new Promise<boolean>((resolve) => {
    const p = spawn('bash', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    p.once('exit', (code) => resolve(code === 0));
  });
  if (!found) throw new Error(`${name} is not installed: \`npm test\` installs it (scripts/system-deps.sh), or apt-get install ${name}`);
}

/**
 * A nats-server on a free port with JetStream. `configText` (given the port and
 * a store dir) makes it start from that config file instead, e.g. with the
 * users `pushctl up` configures.
 */
export async function startNats(o: { configText?: (port: number, storeDir: string) => string } = {}): Promise<RunningServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mp-nats-'));
  await requireBinary('nats-server');
  let args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir];
  if (o.configText) {
    const file = join(dir, 'nats-server.conf');
    writeFileSync(file, o.configText(port, join(dir, 'js')), { mode: 0o600 });
    args = ['-c', file];
  }
  const proc = spawnTied('nats-server', args);
  await waitForPort(port);
  return { url: `nats://127.0.0.1:${port}`, port, proc, stop: () => stopProc(proc, dir) };
}

export async function startRedis(): Promise<RunningServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mp-redis-'));
  await requireBinary('redis-server');
  const proc = spawnTied('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  await waitForPort(port);
  return { url: `redis://127.0.0.1:${port}`, port, proc, stop: () => stopProc(proc, dir) };
}

export interface RestartableNats extends RunningServer {
  /** kill -9 of the nats-server itself (not a graceful shutdown: no lame-duck, no flush). */
  crash(): Promise<void>;
  /** Starts it again on the same port and JetStream store; resolves once the port accepts connections. */
  restart(): Promise<void>;
}

/** A nats-server with JetStream that a test can crash and bring back on the same port and store dir. */
export async function startRestartableNats(): Promise<RestartableNats> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mp-nats-'));
  await requireBinary('nats-server');
  const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir];
  // The tying shell prints the server's pid so crash() can SIGKILL the server itself.
  const spawnOne = async () => {
    const script = `"$@" & child=$!; echo $child; trap 'kill $child 2>/dev/null; wait $child' EXIT INT TERM; read -r _; exit 0`;
    const proc = spawn('bash', ['-c', script, 'tied', 'nats-server', ...args], { stdio: ['pipe', 'pipe', 'ignore'] });
    const pid = await new Promise<number>((resolve, reject) => {
      proc.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      proc.once('exit', () => reject(new Error('nats-server wrapper exited before starting')));
    });
    await waitForPort(port);
    return { proc, pid };
  };
  let cur = await spawnOne();
  const server: RestartableNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    get proc() {
      return cur.proc;
    },
    crash: async () => {
      process.kill(cur.pid, 'SIGKILL');
      const exited = new Promise<void>((r) => cur.proc.once('exit', () => r()));
      cur.proc.stdin!.end(); // the wrapper exits once its stdin closes
      await exited;
    },
    restart: async () => {
      cur = await spawnOne();
    },
    stop: () => stopProc(cur.proc, dir),
  };
  return server;
}
