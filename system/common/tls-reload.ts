// Certificate renewal without a restart: on SIGHUP, or when the certificate
// or key file changes on disk (polled: a rename-into-place, as certbot and
// friends do, is seen where an inotify watch on the old inode would not be),
// the pair is read and checked again and handed to every TLS server of the
// role. Connections already open keep their session; new handshakes get the
// new certificate. A bad pair is logged and ignored: the old one stays.
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import type { Logger } from './logger.ts';
import { loadTlsFiles, type TlsFiles, type TlsMaterial } from './tls.ts';

export interface TlsReloader {
  /** Reads the files again now; true when the new pair was applied. */
  reload(): boolean;
  stop(): void;
}

/** Something that serves TLS and can swap its certificate (https.Server, tls.Server). */
export interface SecureContextHolder {
  setSecureContext(options: { cert: Buffer; key: Buffer }): void;
}
export const setPair = (server: SecureContextHolder) => (m: TlsMaterial) => server.setSecureContext({ cert: m.cert, key: m.key });

/** `loaded`: the pair the servers were started with (not applied again). */
export function watchTlsFiles(files: TlsFiles, loaded: TlsMaterial, apply: Array<(m: TlsMaterial) => void>, log: Logger, pollMs = 2_000): TlsReloader {
  let current = loaded.fingerprint256;
  const reload = (): boolean => {
    let m: TlsMaterial;
    try {
      m = loadTlsFiles(files);
    } catch (err) {
      log.warn('TLS certificate not reloaded; the current one stays', { err: (err as Error).message });
      return false;
    }
    for (const f of apply) f(m);
    if (m.fingerprint256 !== current) log.info('TLS certificate loaded', { certFile: files.certFile, fingerprint256: m.fingerprint256 });
    current = m.fingerprint256;
    return true;
  };
  // A renewal writes both files one after the other: wait for the second before reading.
  let settle: NodeJS.Timeout | undefined;
  const changed = (now: Stats, before: Stats) => {
    if (now.mtimeMs === before.mtimeMs && now.ino === before.ino && now.size === before.size) return;
    clearTimeout(settle);
    settle = setTimeout(reload, 200);
    settle.unref();
  };
  const onHup = () => void reload();
  process.on('SIGHUP', onHup);
  for (const f of [files.certFile, files.keyFile]) watchFile(f, { interval: pollMs, persistent: false }, changed);
  return {
    reload,
    stop() {
      clearTimeout(settle);
      process.off('SIGHUP', onHup);
      for (const f of [files.certFile, files.keyFile]) unwatchFile(f, changed);
    },
  };
}
