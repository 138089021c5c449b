/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core
 * (no browser is ever downloaded). A dev-mode node hands the page its client token; two
 * daemons connect; a request sent through the form shows its result without a reload,
 * and a daemon leaving shows its runtime offline. Then the token-field path without dev
 * mode. The screenshot lands in test-artifacts/dashboard.png.
 */
import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDaemon, type Daemon } from '../../src/client/daemon.js';
import type { SwitchboardNode } from '../../src/node.js';
import { clientToken, daemonToken, startTestNode } from '../helpers/node.js';
import { ARTIFACTS, launchChromium, startDevNode, watchErrors } from './chromium.js';

function startDaemon(
  url: string,
  token: string,
  handlers: Parameters<typeof connectDaemon>[0]['handlers'],
) {
  const daemon = connectDaemon({ url, token, capacity: 2, handlers, backoff: { maxMs: 500 } });
  return new Promise<Daemon>((resolve) => {
    if (daemon.state === 'socket') resolve(daemon);
    daemon.on('state', (s) => s === 'socket' && resolve(daemon));
  });
}

describe('dashboard in Chromium', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  describe('dev mode', () => {
    let node: SwitchboardNode;
    const daemons: Daemon[] = [];
    let daemonFor: (rt: string) => Promise<string>;

    beforeAll(async () => {
      const started = await startDevNode();
      node = started.node;
      const { auth } = started;
      daemonFor = (rt: string) =>
        auth.sign({ sub: `dev-${rt}`, ws: 'dev', role: 'daemon', rt }, '1h');
      daemons.push(
        await startDaemon(node.url, await daemonFor('demo'), { echo: async (payload) => payload }),
        await startDaemon(node.url, await daemonFor('other'), { '*': async () => null }),
      );
    });
    afterAll(async () => {
      await Promise.all(daemons.map((d) => d.close()));
      await node?.kill();
    });

    it('sends a request from the form, shows its result live, and shows a daemon leaving', async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
      const errors = watchErrors(page);
      const scripts: string[] = [];
      page.on('request', (r) => {
        if (r.resourceType() === 'script') scripts.push(new URL(r.url()).pathname);
      });
      await page.goto(node.url);
      expect(
        await page.locator('meta[name="switchboard-token"]').count(),
        'startNode({ devClientToken }) hands the token to the page',
      ).toBe(1);

      // The page imports the client by its content hash (cached for good), not by the
      // revalidated /client/browser.js.
      await page.locator('[data-testid="connection"][data-mode="live"]').waitFor();
      expect(scripts).toHaveLength(4);
      expect(scripts).toEqual(
        expect.arrayContaining([
          '/ui/app.js',
          '/ui/charts.js',
          '/ui/explorer.js',
          expect.stringMatching(/^\/client\/browser\.[0-9a-f]{16}\.js$/),
        ]),
      );

      const runtime = (id: string, online: boolean) =>
        page.locator(`[data-testid="runtime"][data-runtime="${id}"][data-online="${online}"]`);
      await runtime('demo', true).waitFor();
      await runtime('other', true).waitFor();
      await expect(page.getByTestId('token-panel').isHidden()).resolves.toBe(true);
      await page.locator('[data-testid="connection"][data-mode="live"]').waitFor();
      await expect(runtime('demo', true).getByTestId('connection-row').count()).resolves.toBe(1);

      // A marker that a reload would wipe.
      await page.evaluate(() => {
        (globalThis as unknown as { marker: number }).marker = 42;
      });
      await page.getByLabel('Runtime', { exact: true }).fill('demo');
      await page.getByLabel('Kind', { exact: true }).fill('echo');
      await page.getByLabel('Payload (JSON, optional)').fill('{"greeting": "hi", "n": 7}');
      await page.getByTestId('send-submit').click();

      await page.locator('[data-testid="send-result-status"][data-status="completed"]').waitFor();
      const body = await page.getByTestId('send-result-body').textContent();
      expect(JSON.parse(body ?? '')).toEqual({ greeting: 'hi', n: 7 });
      const id = await page.getByTestId('send-result').getAttribute('data-id');
      await page
        .locator(`[data-testid="feed-item"][data-id="${id}"][data-status="completed"]`)
        .waitFor();
      await expect(
        page.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
      ).resolves.toBe(42);

      // A bad payload is refused in the page, not sent.
      await page.getByLabel('Payload (JSON, optional)').fill('{nope');
      await page.getByTestId('send-submit').click();
      await page.locator('[data-testid="send-error"]:has-text("not JSON")').waitFor();
      await page.getByLabel('Payload (JSON, optional)').fill('{"second": true}');
      await page.getByTestId('send-submit').click();
      await page.locator('[data-testid="feed-item"][data-status="completed"]').nth(1).waitFor();

      // A runtime whose first daemon connects after the page loaded shows up by itself.
      const late = await startDaemon(node.url, await daemonFor('late'), {
        '*': async () => 'late',
      });
      await runtime('late', true).waitFor();
      await late.close();
      await runtime('late', false).waitFor();

      await daemons[1]?.close();
      await runtime('other', false).waitFor();
      await runtime('demo', true).waitFor();
      await expect(
        runtime('other', false).getByTestId('runtime-state').textContent(),
      ).resolves.toBe('offline');

      // Sent to the runtime with no daemon, it waits; cancelled from the feed, it ends.
      await page.getByLabel('Runtime', { exact: true }).fill('other');
      await page.getByLabel('Kind', { exact: true }).fill('later');
      await page.getByTestId('send-submit').click();
      await page.locator('[data-testid="send-result-status"][data-status="pending"]').waitFor();
      const waiting = await page.getByTestId('send-result').getAttribute('data-id');
      const item = page.locator(`[data-testid="feed-item"][data-id="${waiting}"]`);
      await item.getByRole('button', { name: `cancel request ${waiting}` }).click();
      await page
        .locator(`[data-testid="feed-item"][data-id="${waiting}"][data-status="cancelled"]`)
        .waitFor();
      await page.locator('[data-testid="send-result-status"][data-status="cancelled"]').waitFor();
      // Counts follow the requests (re-read when they change, not polled).
      await runtime('other', false).locator('[data-testid="pending"]:text-is("0")').waitFor();

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: new URL('dashboard.png', ARTIFACTS).pathname, fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    });
  });

  describe('without dev mode', () => {
    let node: SwitchboardNode;
    let daemon: Daemon;

    beforeAll(async () => {
      node = await startTestNode();
      daemon = await startDaemon(node.url, await daemonToken('laptop'), { '*': async () => 1 });
    });
    afterAll(async () => {
      await daemon?.close();
      await node?.kill();
    });

    it('asks for a token, keeps it for the tab, and refuses a bad one', async () => {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(node.url);
      await page.getByTestId('token-panel').waitFor();
      expect(await page.locator('meta[name="switchboard-token"]').count()).toBe(0);

      await page.getByLabel('Client token').fill('forged.token.here');
      await page.getByTestId('token-submit').click();
      await page.locator('[data-testid="token-error"]:has-text("refused")').waitFor();

      await page.getByLabel('Client token').fill(await clientToken('acme'));
      await page.getByTestId('token-submit').click();
      await page
        .locator('[data-testid="runtime"][data-runtime="laptop"][data-online="true"]')
        .waitFor();
      await expect(page.getByTestId('workspace').textContent()).resolves.toBe('workspace acme');

      await page.reload();
      await page
        .locator('[data-testid="runtime"][data-runtime="laptop"][data-online="true"]')
        .waitFor();
      await expect(page.getByTestId('token-panel').isHidden()).resolves.toBe(true);
      // The 401 of the forged token is the only error the page may have logged.
      expect(errors.filter((e) => !e.includes('401'))).toEqual([]);
      await page.close();
    });
  });
});
