/** Starting node processes for the benches, and waiting for them to be ready. */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/redis.js';

/**
 * A node process on `redisUrl`. `profile`: write its CPU profile to that directory
 * (Node's own file names, pid and thread id in each: under tsx its loader thread writes
 * a profile too, which a fixed name would let overwrite the main thread's). `dist`: run
 * the built node (npm run build), as `npm start` does; else the sources through tsx.
 */
export async function startBenchNode(
  redisUrl: string,
  nodeId: string,
  secret: string,
  opts: { profile?: string; dist?: boolean; env?: Record<string, string> } = {},
): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const profile = opts.profile ? ['--cpu-prof', '--cpu-prof-dir', opts.profile] : [];
  const cli = opts.dist ? ['dist/src/cli.js'] : ['--import', 'tsx', 'src/cli.ts'];
  const child = spawn(process.execPath, [...profile, ...cli, 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ID: nodeId,
      REDIS_URL: redisUrl,
      HUB_SECRET: secret,
      LOG_LEVEL: 'warn',
      SHUTDOWN_GRACE_MS: '1000',
      ...opts.env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await untilReady(url, child, `node ${nodeId}`);
  return { url, child };
}

/** Waits for a node process the bench started to answer /readyz 200 (at most 20 s). */
export async function untilReady(url: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`${what} did not become ready`);
}
