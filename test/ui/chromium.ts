/**
 * What the browser tests share: Debian's Chromium, headless through playwright-core (no
 * browser is ever downloaded), a page that fails the test on any error it logs, and a
 * dev-mode node that hands the page its client token.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { Auth } from '../../src/auth.js';
import { loadConfig } from '../../src/config.js';
import { type SwitchboardNode, startNode } from '../../src/node.js';

/** Debian's package; elsewhere point CHROMIUM_PATH at a Chromium or Chrome binary. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Fails the test on anything the page logs as an error or throws. Also shortens
 * Playwright's waits below the test's timeout, so a failure names what it waited for.
 */
export function watchErrors(page: Page): string[] {
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

/** A dev-mode node (workspace `dev`) whose page embeds a client token, and its token signer. */
export async function startDevNode(): Promise<{ node: SwitchboardNode; auth: Auth }> {
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
  return { node: await startNode({ config, devClientToken }), auth };
}
