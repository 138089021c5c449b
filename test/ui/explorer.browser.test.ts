/**
 * The dashboard's stats and request explorer in a real browser (Debian's Chromium,
 * headless, through playwright-core): after a burst of requests the three charts draw
 * it from GET /v1/stats; the list filters by runtime, status and kind and pages through
 * the list API; the id look-up opens a request's detail; and the "failed and timed out"
 * view retries every dead letter in bulk, each retry a new request that completes.
 * Screenshots land in test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Auth } from '../../src/auth.js';
import { connectDaemon, type Daemon } from '../../src/client/daemon.js';
import type { SwitchboardNode } from '../../src/node.js';
import { api } from '../helpers/node.js';
import { ARTIFACTS, launchChromium, startDevNode, watchErrors } from './chromium.js';

const BURST = 40;

function startDaemon(
  url: string,
  token: string,
  handlers: Parameters<typeof connectDaemon>[0]['handlers'],
) {
  const daemon = connectDaemon({ url, token, capacity: 4, handlers, backoff: { maxMs: 500 } });
  return new Promise<Daemon>((resolve) => {
    if (daemon.state === 'socket') resolve(daemon);
    daemon.on('state', (s) => s === 'socket' && resolve(daemon));
  });
}

async function shot(page: Page, name: string) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: new URL(name, ARTIFACTS).pathname, fullPage: true });
}

describe('dashboard stats and request explorer in Chromium', () => {
  let browser: Browser;
  let node: SwitchboardNode;
  let auth: Auth;
  let client: string;
  const daemons: Daemon[] = [];
  const daemonFor = (rt: string) =>
    auth.sign({ sub: `dev-${rt}`, ws: 'dev', role: 'daemon', rt }, '1h');

  beforeAll(async () => {
    browser = await launchChromium();
    ({ node, auth } = await startDevNode());
    client = await auth.sign({ sub: 'test', ws: 'dev', role: 'client' }, '1h');
  });
  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.close()));
    await node?.kill();
    await browser?.close();
  });

  const call = (method: string, path: string, body?: unknown) =>
    api(node, method, path, { token: client, body });
  const finished = async (runtime: string, id: string) => {
    const res = await call('GET', `/v1/runtimes/${runtime}/requests/${id}?wait_ms=20000`);
    expect(res.status).toBe(200);
    return res.body;
  };

  it('charts a burst, filters and pages the list, looks up an id, and retries the dead letters', async () => {
    // alpha echoes; its `flaky` kind fails the first time for each n and then succeeds.
    const failedOnce = new Set<number>();
    daemons.push(
      await startDaemon(node.url, await daemonFor('alpha'), {
        echo: async (payload) => payload,
        flaky: async (payload) => {
          const { n } = payload as { n: number };
          if (!failedOnce.has(n)) {
            failedOnce.add(n);
            throw new Error(`flaky ${n} failed once`);
          }
          return { recovered: n };
        },
      }),
    );
    const burst = await call('POST', '/v1/runtimes/alpha/requests/batch', {
      requests: Array.from({ length: BURST }, (_, n) => ({ kind: 'echo', payload: { n } })),
    });
    expect(burst.status).toBe(201);
    const flaky = await Promise.all(
      [1, 2, 3].map((n) =>
        call('POST', '/v1/runtimes/alpha/requests', { kind: 'flaky', payload: { n } }),
      ),
    );
    // ghost has no daemon yet: these wait (sampled as pending), then time out.
    const ghosts = await Promise.all(
      [1, 2].map((n) =>
        call('POST', '/v1/runtimes/ghost/requests', {
          kind: 'haunt',
          payload: { n },
          pending_timeout_ms: 1500,
        }),
      ),
    );
    const ids = burst.body.requests.map((r: { id: string }) => r.id) as string[];
    for (const id of ids) expect((await finished('alpha', id)).status).toBe('completed');
    for (const r of flaky) expect((await finished('alpha', r.body.id)).status).toBe('failed');

    // Nodes flush their figures about once a second: wait for the API to have them all.
    // (ghost is not read meanwhile: its timeouts are the sweep's, which counts them.)
    const total = BURST + 5;
    const figures = async () => {
      const { minutes } = (await call('GET', '/v1/stats')).body;
      const sum = (f: string) => minutes.reduce((n: number, m: any) => n + m[f], 0);
      return [sum('created'), sum('completed'), sum('failed'), sum('timeout')];
    };
    await expect.poll(figures, { timeout: 15_000 }).toEqual([total, BURST, 3, 2]);
    for (const r of ghosts) expect((await finished('ghost', r.body.id)).status).toBe('timeout');
    const stats = (await call('GET', '/v1/stats')).body;
    expect(Object.keys(stats.pending)).toContain('ghost');

    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(node.url);

    // ---- charts: drawn with the burst in them
    await page.waitForFunction(
      (n) =>
        Number(
          (globalThis as any).document.querySelector('[data-testid="chart-throughput"]')?.dataset
            .created,
        ) === n,
      total,
    );
    for (const chart of ['chart-throughput', 'chart-latency', 'chart-pending']) {
      await expect(page.locator(`[data-testid="${chart}"] canvas`).count()).resolves.toBe(1);
      await expect(
        page.locator(`[data-testid="${chart}"]`).getAttribute('data-points'),
      ).resolves.toBe('15');
    }
    const throughput = page.getByTestId('chart-throughput');
    await expect(throughput.getAttribute('data-completed')).resolves.toBe(String(BURST));
    const measured = await page.getByTestId('chart-latency').getAttribute('data-measured');
    expect(Number(measured)).toBeGreaterThanOrEqual(1);
    const runtimes = await page.getByTestId('chart-pending').getAttribute('data-runtimes');
    expect(Number(runtimes)).toBeGreaterThanOrEqual(1);
    await expect(page.locator('.u-legend:has-text("ghost")').count()).resolves.toBe(1);

    // ---- filters: runtime and status (the list API), kind (applied to its pages)
    const rows = page.getByTestId('request-row');
    const settled = () => page.locator('[data-testid="explorer"][data-loading="false"]').waitFor();
    const statuses = async () => rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.status));
    await page.getByTestId('filter-runtime').selectOption('alpha');
    await page.getByTestId('filter-status').selectOption('failed');
    await settled();
    await expect.poll(statuses).toEqual(['failed', 'failed', 'failed']);

    await page.getByTestId('filter-status').selectOption('');
    await page.getByTestId('filter-kind').fill('flaky');
    await page.getByTestId('filter-apply').click();
    await settled();
    await expect
      .poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.kind)))
      .toEqual(['flaky', 'flaky', 'flaky']);

    // ---- paging: 40 completed in pages of 25
    await page.getByTestId('filter-kind').fill('');
    await page.getByTestId('filter-status').selectOption('completed');
    await settled();
    await expect.poll(() => rows.count()).toBe(25);
    const firstPage = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
    await expect(page.getByTestId('page-next').isEnabled()).resolves.toBe(true);
    await page.getByTestId('page-next').click();
    await settled();
    await expect.poll(() => rows.count()).toBe(BURST - 25);
    const secondPage = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
    expect(new Set([...firstPage, ...secondPage])).toEqual(new Set(ids));
    await expect(page.getByTestId('page-next').isDisabled()).resolves.toBe(true);
    await page.getByTestId('page-first').click();
    await settled();
    await expect.poll(() => rows.count()).toBe(25);

    // ---- look-up by id (any runtime), and the detail it opens
    await page.getByTestId('filter-runtime').selectOption('');
    const wanted = ids[7] as string;
    await page.getByTestId('lookup-id').fill(wanted);
    await page.getByTestId('lookup-submit').click();
    const detail = page.locator(`[data-testid="detail"][data-id="${wanted}"]`);
    await detail.waitFor();
    await expect(detail.getByTestId('detail-status').textContent()).resolves.toBe('completed');
    await expect(detail.getByTestId('detail-runtime').textContent()).resolves.toBe('alpha');
    await expect(detail.getByTestId('detail-epoch').textContent()).resolves.toBe('1');
    await expect(detail.getByTestId('detail-attempt').textContent()).resolves.toBe('1 of 1');
    const result = await detail.getByTestId('detail-result').textContent();
    expect(JSON.parse(result ?? '')).toEqual({ n: 7 });
    for (const t of ['created_at', 'claimed_at', 'finished_at']) {
      await expect(detail.getByTestId(`detail-${t}`).textContent()).resolves.not.toBe('—');
    }
    await expect(detail.getByTestId('detail-retry').count()).resolves.toBe(0);
    await page.getByTestId('lookup-id').fill('01JXXXXXXXXXXXXXXXXXXXXXXX');
    await page.getByTestId('lookup-submit').click();
    await page.locator('[data-testid="lookup-error"]:has-text("no request")').waitFor();

    // ---- the dead-letter view: retry all, each retry completes
    daemons.push(
      await startDaemon(node.url, await daemonFor('ghost'), { haunt: async () => 'boo' }),
    );
    await page.getByTestId('tab-dead').click();
    await settled();
    await expect
      .poll(async () => (await statuses()).sort())
      .toEqual(['failed', 'failed', 'failed', 'timeout', 'timeout']);
    await shot(page, 'dashboard-dead-letters.png');
    await page.getByTestId('select-all').check();
    await expect(page.getByTestId('retry-selected').textContent()).resolves.toBe(
      'Retry 5 selected',
    );
    await page.getByTestId('retry-selected').click();
    await page.locator('[data-testid="bulk-status"]:text-is("retried 5")').waitFor();
    const retried = page.getByTestId('retried-as');
    await expect.poll(() => retried.count()).toBe(5);
    const made = await retried.evaluateAll((bs) => bs.map((b) => b.getAttribute('data-new-id')));
    for (const id of made) {
      await page
        .locator(`[data-testid="feed-item"][data-id="${id}"][data-status="completed"]`)
        .waitFor();
    }
    await retried.first().click();
    await page.locator('[data-testid="detail"][data-status="completed"]').waitFor();
    await expect(page.getByTestId('detail-id').textContent()).resolves.toBe(made[0]);

    // The charts follow: the retries are counted as created and completed.
    await page.waitForFunction(
      (n) =>
        Number(
          (globalThis as any).document.querySelector('[data-testid="chart-throughput"]')?.dataset
            .created,
        ) === n,
      total + 5,
      { timeout: 15_000 },
    );
    await shot(page, 'dashboard-stats.png');
    // The look-ups ask every runtime: the ones without the id answer 404, which Chromium
    // logs. Nothing else may have been logged.
    expect(errors.filter((e) => !e.includes('status of 404'))).toEqual([]);
    await page.close();
  });
});
