/**
 * The dashboard's live output in a real browser (Debian's Chromium, headless, through
 * playwright-core, launched as in dashboard.browser.test.ts). A raw daemon socket writes
 * a request's output step by step: the chunks appear under the sent request's result
 * and in its feed item as they are stored, without a reload; a page opened after the
 * request ended shows the whole output. Screenshots land in test-artifacts/
 * (dashboard-output-live.png mid-stream, dashboard-output.png after the end).
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Auth } from '../../src/auth.js';
import type { SwitchboardNode } from '../../src/node.js';
import { type FrameSocket, readyDaemon } from '../helpers/node.js';
import { emitOutput } from '../helpers/output.js';
import { ARTIFACTS, launchChromium, startDevNode, watchErrors } from './chromium.js';

/** What the daemon writes as chunk `n`: mostly text lines, one JSON value. */
const chunk = (n: number) => (n === 5 ? { progress: 0.5 } : `token ${n}: ${'·'.repeat(n)}`);
const line = (n: number) => (n === 5 ? '{"progress":0.5}' : `token ${n}: ${'·'.repeat(n)}`);
const lines = (to: number) => Array.from({ length: to }, (_, i) => line(i + 1));

const emit = (daemon: FrameSocket, id: string, epoch: number, from: number, to: number) =>
  emitOutput(daemon, id, epoch, from, to, chunk);

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
    let auth: Auth;
    ({ node, auth } = await startDevNode());
    const daemonToken = await auth.sign(
      { sub: 'dev-streamer', ws: 'dev', role: 'daemon', rt: 'streamer' },
      '1h',
    );
    daemon = await readyDaemon(node, daemonToken, 1);
    browser = await launchChromium();
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
