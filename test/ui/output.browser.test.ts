/**
 * The dashboard's live output in a real browser (Debian's Chromium, headless, through
 * playwright-core, launched as in dashboard.browser.test.ts). A raw daemon socket writes
 * a request's output step by step: the chunks appear under the sent request's result
 * and in its feed item as they are stored, without a reload; a page opened after the
 * request ended shows the whole output. Screenshots land in test-artifacts/
 * (dashboard-output-live.png mid-stream, dashboard-output.png after the end).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Auth } from '../../src/auth.js';
import { loadConfig } from '../../src/config.js';
import { type SwitchboardNode, startNode } from '../../src/node.js';
import { type FrameSocket, readyDaemon } from '../helpers/node.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);

/** What the daemon writes as chunk `n`: mostly text lines, one JSON value. */
const chunk = (n: number) => (n === 5 ? { progress: 0.5 } : `token ${n}: ${'·'.repeat(n)}`);
const line = (n: number) => (n === 5 ? '{"progress":0.5}' : `token ${n}: ${'·'.repeat(n)}`);
const lines = (to: number) => Array.from({ length: to }, (_, i) => line(i + 1));

/** Writes chunks `from..to` (seq = n) and waits until the hub stored them all. */
async function emit(daemon: FrameSocket, id: string, epoch: number, from: number, to: number) {
  for (let seq = from; seq <= to; seq++) {
    daemon.send({ type: 'output', id, epoch, seq, data: chunk(seq) });
  }
  for (;;) {
    const f = await daemon.next(
      (x) => (x.type === 'output_ack' || x.type === 'nack') && x.id === id,
    );
    if (f.type === 'nack') throw new Error(`output refused: ${JSON.stringify(f)}`);
    if ((f.seq as number) >= to) return;
  }
}

function watchErrors(page: Page): string[] {
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

/** The text lines of an output view. */
async function shown(page: Page, selector: string): Promise<string[]> {
  const text = (await page.locator(selector).textContent()) ?? '';
  return text.split('\n').filter((l) => l !== '');
}

describe('dashboard output in Chromium', () => {
  let browser: Browser;
  let node: SwitchboardNode;
  let daemon: FrameSocket;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `no browser at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`,
      );
    }
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      HEARTBEAT_INTERVAL_MS: '1000',
      SWEEP_INTERVAL_MS: '200',
      SHUTDOWN_GRACE_MS: '1000',
    });
    expect(config.devMode).toBe(true);
    const auth = new Auth(config.hubSecret);
    const devClientToken = await auth.sign({ sub: 'dev-client', ws: 'dev', role: 'client' }, '1h');
    node = await startNode({ config, devClientToken });
    const daemonToken = await auth.sign(
      { sub: 'dev-streamer', ws: 'dev', role: 'daemon', rt: 'streamer' },
      '1h',
    );
    daemon = await readyDaemon(node, daemonToken, 1);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await daemon?.close();
    await node?.kill();
  });

  it("shows a streaming request's chunks as they come, without a reload, and all of them afterwards", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    let loads = 0;
    page.on('load', () => loads++);
    await page.goto(node.url);
    await page.locator('[data-testid="connection"][data-mode="live"]').waitFor();
    await page
      .locator('[data-testid="runtime"][data-runtime="streamer"][data-online="true"]')
      .waitFor();
    await page.evaluate(() => {
      (globalThis as unknown as { marker: number }).marker = 42;
    });

    await page.getByLabel('Runtime', { exact: true }).fill('streamer');
    await page.getByLabel('Kind', { exact: true }).fill('stream');
    await page.getByLabel('Payload (JSON, optional)').fill('{"chunks": 12}');
    await page.getByTestId('send-submit').click();
    const pushed = await daemon.next('request');
    const { id, epoch } = pushed.request as { id: string; epoch: number };
    await page.locator(`[data-testid="send-result"][data-id="${id}"]`).waitFor();
    await page.locator('[data-testid="send-result-status"][data-status="running"]').waitFor();

    const panel = `[data-testid="send-result-output"][data-id="${id}"]`;
    await emit(daemon, id, epoch, 1, 3);
    await page.locator(`${panel}[data-count="3"]`).waitFor();
    expect(await shown(page, panel)).toEqual(lines(3));

    // The feed item's output, opened mid-stream, starts with what came so far.
    const item = page.locator(`[data-testid="feed-item"][data-id="${id}"]`);
    await item.locator('[data-testid="output-details"] summary').click();
    const feed = `[data-testid="feed-item"][data-id="${id}"] [data-testid="output"]`;
    await page.locator(`${feed}[data-count="3"]`).waitFor();

    await emit(daemon, id, epoch, 4, 8);
    await page.locator(`${panel}[data-count="8"][data-state="live"]`).waitFor();
    await page.locator(`${feed}[data-count="8"]`).waitFor();
    expect(await shown(page, panel)).toEqual(lines(8));
    expect(await shown(page, feed)).toEqual(lines(8));
    await expect(page.getByTestId('send-result-output-meta').textContent()).resolves.toBe(
      'output: 8 chunks, streaming…',
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: new URL('dashboard-output-live.png', ARTIFACTS).pathname,
      fullPage: true,
    });

    await emit(daemon, id, epoch, 9, 12);
    daemon.send({ type: 'result', id, epoch, status: 'completed', result: { chunks: 12 } });
    await page.locator('[data-testid="send-result-status"][data-status="completed"]').waitFor();
    await page.locator(`${panel}[data-count="12"][data-state="done"]`).waitFor();
    await page.locator(`${feed}[data-count="12"][data-state="done"]`).waitFor();
    expect(await shown(page, panel)).toEqual(lines(12));
    expect(await shown(page, feed)).toEqual(lines(12));
    // The feed re-rendered on every state change; the opened output stayed open.
    await expect(item.locator('[data-testid="output-details"]').getAttribute('open')).resolves.toBe(
      '',
    );
    await expect(
      page.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
    ).resolves.toBe(42);
    expect(loads).toBe(1);
    await page.screenshot({
      path: new URL('dashboard-output.png', ARTIFACTS).pathname,
      fullPage: true,
    });
    expect(errors).toEqual([]);

    // A page opened afterwards shows the finished request's whole output.
    const later = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const laterErrors = watchErrors(later);
    await later.goto(node.url);
    const done = later.locator(
      `[data-testid="feed-item"][data-id="${id}"][data-status="completed"]`,
    );
    await done.locator('[data-testid="output-details"] summary').click();
    const whole = `[data-testid="feed-item"][data-id="${id}"] [data-testid="output"]`;
    await later.locator(`${whole}[data-count="12"][data-state="done"]`).waitFor();
    expect(await shown(later, whole)).toEqual(lines(12));
    expect(laterErrors).toEqual([]);
    await later.close();
    await page.close();
  });
});
