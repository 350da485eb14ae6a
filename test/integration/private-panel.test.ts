// The demo page's private panel in a real browser (Debian's chromium,
// headless) against a real cluster with simulated users: a forged token is
// refused and said so; a valid token shows that user's orders and balances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { SignJWT } from 'jose';
import { startCluster } from '../helpers/cluster.ts';

const SECRET = 'private-panel-test-secret-0123456789';
const jwt = (sub: string, secret = SECRET) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(secret));

interface PanelState { state: string; events: number; balances: Record<string, { f: string; l: string }>; lastError: string }
const panel = (page: Page) => page.evaluate(() => (window as unknown as { privatePanel?: PanelState }).privatePanel);

async function until(page: Page, cond: (p: PanelState) => boolean, what: string, timeoutMs = 60_000): Promise<PanelState> {
  const deadline = Date.now() + timeoutMs;
  let last: PanelState | undefined;
  for (;;) {
    last = await panel(page).catch(() => undefined);
    if (last && cond(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; panel: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('demo private panel: a bad token is refused; a good one shows the user\'s orders and balances live', async (t) => {
  const cluster = await startCluster({ servers: 1, gateways: 1, symbols: 2, rate: 20, gateway: { auth: { hs256Secret: SECRET } }, feed: { users: 2, orderRate: 4, seed: 11 } });
  t.after(() => cluster.stop());
  const profile = await mkdtemp(join(tmpdir(), 'mp-chromium-'));
  t.after(() => rm(profile, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${cluster.gateways[0]!.urls.http}/demo/?protocol=ws`);

  await page.fill('#pp-token', await jwt('user1', 'not-the-secret-at-all-0123456789'));
  await page.click('#pp-login');
  await until(page, (p) => p.state.startsWith('refused'), 'the forged token refused');

  await page.fill('#pp-token', await jwt('user1'));
  await page.click('#pp-login');
  const p = await until(page, (s) => s.state === 'live' && s.events >= 5 && Object.keys(s.balances).length >= 2, 'orders and balances');
  for (const b of Object.values(p.balances)) assert.match(b.f, /^\d+\.\d{8}$/);
  const rows = await page.locator('#pp-orders tbody tr').count();
  assert.ok(rows > 0, 'order rows shown');
  assert.deepEqual(pageErrors, []);
});
