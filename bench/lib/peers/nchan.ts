// Runs nginx + nchan for bench:peers: a temp directory with the generated
// config (nchan-config.ts), a free loopback port, nginx in the foreground
// under a shell tied to this process (when this process dies, its stdin
// closes and nginx is stopped), and stop() that ends it and removes the dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from '../../../test/helpers/servers.ts';
import { findNchanModule, nchanConfig } from './nchan-config.ts';

export interface RunningNchan {
  base: string;
  /** The tied shell; nginx's master and workers are its descendants. */
  pid: number;
  version: string;
  stop(): Promise<void>;
}

/** Why nchan cannot run here, or undefined when nginx and the module are installed. */
export function nchanUnavailable(): string | undefined {
  const v = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) return 'nginx is not installed (Debian: apt-get install nginx-light libnginx-mod-nchan; scripts/system-deps.sh does it)';
  if (!findNchanModule()) return 'the nchan module is not installed (Debian: apt-get install libnginx-mod-nchan; scripts/system-deps.sh does it)';
  return undefined;
}

export function nchanVersions(): string {
  const nginx = (spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr ?? '').trim().replace('nginx version: ', '');
  const pkg = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan'], { encoding: 'utf8' });
  return `${nginx}, libnginx-mod-nchan ${pkg.status === 0 ? pkg.stdout.trim() : 'unknown'}`;
}

export async function startNchan(workers: number, workerConnections: number): Promise<RunningNchan> {
  const why = nchanUnavailable();
  if (why) throw new Error(why);
  const dir = mkdtempSync(join(tmpdir(), 'mp-nchan-'));
  // Workers drop to an unprivileged user when started as root: they must reach the temp paths.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nchanConfig({ dir, port, modulePath: findNchanModule()!, workers, workerConnections }));
  const script = `"$@" & child=$!; trap 'kill $child 2>/dev/null; wait $child' EXIT INT TERM; read -r _; exit 0`;
  const proc: ChildProcess = spawn('bash', ['-c', script, 'tied', 'nginx', '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    // nginx's master may outlive a killed shell: its pid file says which to end.
    try {
      const pid = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, 15_000);
  } catch (err) {
    let log = '';
    try {
      log = readFileSync(join(dir, 'error.log'), 'utf8').slice(-1000);
    } catch {
      // no log
    }
    await stop();
    throw new Error(`nginx + nchan did not start: ${(err as Error).message} ${log}`);
  }
  return { base: `127.0.0.1:${port}`, pid: proc.pid ?? 0, version: nchanVersions(), stop };
}
