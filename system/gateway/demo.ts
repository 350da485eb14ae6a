// The demo web page every gateway serves at /demo/: web/demo/index.html and
// web/demo/app.ts, bundled by esbuild (from npm, no CDN) into memory on the
// first request. /demo/config.json tells the page where the routers are, so
// it can find another gateway when this one dies.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendJson } from '../common/http.ts';

const WEB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web', 'demo');

let bundle: Promise<string> | undefined;

/** The page's script, built once per process (esbuild's service is stopped after, so nothing lingers). */
function buildBundle(): Promise<string> {
  bundle ??= (async () => {
    const esbuild = await import('esbuild');
    try {
      const out = await esbuild.build({
        entryPoints: [join(WEB, 'app.ts')],
        bundle: true,
        write: false,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        minify: true,
        logLevel: 'silent',
      });
      return out.outputFiles[0]!.text;
    } finally {
      await esbuild.stop();
    }
  })();
  bundle.catch(() => (bundle = undefined)); // a failed build is retried on the next request
  return bundle;
}

export function createDemo(o: { routers: readonly string[] }) {
  return async function serveDemo(_req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const file = url.pathname.slice('/demo/'.length);
    if (file === '' || file === 'index.html') {
      const html = await readFile(join(WEB, 'index.html'));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': html.length, 'cache-control': 'no-cache' });
      res.end(html);
      return;
    }
    if (file === 'app.js') {
      let js: string;
      try {
        js = await buildBundle();
      } catch (err) {
        return sendJson(res, 503, { error: `demo page could not be built: ${(err as Error).message}` });
      }
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'content-length': Buffer.byteLength(js), 'cache-control': 'no-cache' });
      res.end(js);
      return;
    }
    if (file === 'config.json') return sendJson(res, 200, { routers: o.routers }, { 'cache-control': 'no-cache' });
    sendJson(res, 404, { error: `no demo file "${file}"` });
  };
}
