/**
 * The `switchboard` command, spawned for real from its sources (`node --import tsx
 * src/cli.ts ...`; test/package/pack.test.ts runs the compiled, installed one) against a
 * real node in this process: minting tokens the node accepts, usage errors (exit 2),
 * and running a daemon (echo, or a handlers module) that completes requests created
 * over HTTP and exits 0 on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../src/node.js';
import { api, clientToken, SECRET, startTestNode } from './helpers/node.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'src', 'cli.ts');
/** tsx's loader by URL: some runs start in a temporary directory, where `tsx` resolves to nothing. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

const children = new Set<ChildProcess>();

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns the CLI; every process is SIGKILLed in afterAll if it is still running. */
function cli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Run {
  const env: Record<string, string | undefined> = { ...process.env, HUB_SECRET: SECRET };
  delete env.SWITCHBOARD_URL;
  delete env.SWITCHBOARD_TOKEN;
  delete env.REDIS_URL;
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs the CLI to completion. */
async function runCli(args: string[], opts: Parameters<typeof cli>[1] = {}) {
  const run = cli(args, opts);
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Resolves when a stdout line matches; rejects if the process exits first. */
function stdoutLine(run: Run, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const line = run
        .stdout()
        .split('\n')
        .find((l) => pattern.test(l));
      if (line === undefined) return false;
      done();
      resolve(line);
      return true;
    };
    const onExit = (code: number | null) => {
      if (check()) return;
      done();
      reject(new Error(`exited (${code}) before ${pattern}:\n${run.stdout()}\n${run.stderr()}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${run.stdout()}\n${run.stderr()}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      run.child.stdout?.off('data', check);
      run.child.off('exit', onExit);
    };
    run.child.stdout?.on('data', check);
    run.child.on('exit', onExit);
    check();
  });
}

/** SIGTERM, then the exit; SIGKILL in afterAll covers a process that ignores it. */
async function terminate(run: Run) {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
  return run.exited;
}

let n: SwitchboardNode;
let client: string;
const dirs: string[] = [];

beforeAll(async () => {
  n = await startTestNode();
  client = await clientToken();
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await n?.kill();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function mintDaemonToken(runtime: string): Promise<string> {
  const minted = await runCli([
    'token',
    '--role',
    'daemon',
    '--workspace',
    'acme',
    '--runtime',
    runtime,
  ]);
  expect(minted).toMatchObject({ code: 0, stderr: '' });
  return minted.stdout.trim();
}

async function roundTrip(runtime: string, body: Record<string, unknown>) {
  const created = await api(n, 'POST', `/v1/runtimes/${runtime}/requests`, {
    token: client,
    body,
  });
  expect(created.status).toBe(201);
  const waited = await api(
    n,
    'GET',
    `/v1/runtimes/${runtime}/requests/${created.body.id}?wait_ms=20000`,
    { token: client },
  );
  expect(waited.status).toBe(200);
  return waited.body;
}

describe('switchboard token', () => {
  it('prints a client token that a node with the same secret accepts', async () => {
    const minted = await runCli(['token', '--role', 'client', '--workspace', 'acme']);
    expect(minted).toMatchObject({ code: 0, stderr: '' });
    const token = minted.stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(minted.stdout).toBe(`${token}\n`);
    expect((await api(n, 'GET', '/v1/runtimes', { token })).status).toBe(200);

    // Signed with another secret, the same command's token is refused.
    const other = await runCli(['token', '--role', 'client', '--workspace', 'acme'], {
      env: { HUB_SECRET: 'another-secret-0123456789-abcdefghijklmnop' },
    });
    expect(other.code).toBe(0);
    const refused = await api(n, 'GET', '/v1/runtimes', { token: other.stdout.trim() });
    expect(refused).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
  });

  it('exits 2 for a daemon token without --runtime', async () => {
    const res = await runCli(['token', '--role', 'daemon', '--workspace', 'acme']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('--runtime is required');
  });
});

describe('usage', () => {
  it('--help exits 0 and prints the usage', async () => {
    const res = await runCli(['--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('usage: switchboard <command>');
    for (const command of ['serve', 'token', 'daemon']) expect(res.stdout).toContain(command);
  });

  it('an unknown command exits 2', async () => {
    const res = await runCli(['frobnicate']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('unknown command "frobnicate"');
    expect(res.stderr).toContain('usage: switchboard');
  });
});

describe('switchboard daemon', () => {
  it('--echo completes a request with its payload, and SIGTERM exits 0', async () => {
    const token = await mintDaemonToken('cli-echo');
    const daemon = cli(['daemon', '--url', n.url, '--token', token, '--echo']);
    try {
      await stdoutLine(daemon, /state socket/);
      const payload = { hello: 'from the cli', n: [1, 2, 3] };
      expect(await roundTrip('cli-echo', { kind: 'anything', payload })).toMatchObject({
        status: 'completed',
        result: payload,
        attempt: 1,
      });
      await stdoutLine(daemon, /reported \S+ completed/);
      expect(await terminate(daemon)).toEqual({ code: 0, signal: null });
      expect(daemon.stdout()).toMatch(/state closed/);
      expect(daemon.stderr()).toBe('');
    } finally {
      await terminate(daemon);
    }
  });

  it('--handlers loads a module (relative to the working directory) and runs its kinds', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-cli-'));
    dirs.push(dir);
    writeFileSync(
      path.join(dir, 'fixture.mjs'),
      'export default { upper: async (p) => String(p).toUpperCase() };\n',
    );
    const token = await mintDaemonToken('cli-upper');
    const daemon = cli(
      ['daemon', '--url', n.url, '--token', token, '--handlers', './fixture.mjs'],
      {
        cwd: dir,
      },
    );
    try {
      await stdoutLine(daemon, /state socket/);
      expect(await roundTrip('cli-upper', { kind: 'upper', payload: 'shout this' })).toMatchObject({
        status: 'completed',
        result: 'SHOUT THIS',
      });
      expect(await roundTrip('cli-upper', { kind: 'lower' })).toMatchObject({
        status: 'failed',
        error: { code: 'unknown_kind' },
      });
      expect(await terminate(daemon)).toEqual({ code: 0, signal: null });
    } finally {
      await terminate(daemon);
    }
  });

  it('exits 2 without --url', async () => {
    const token = await mintDaemonToken('cli-nourl');
    const res = await runCli(['daemon', '--token', token, '--echo']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--url is required');
  });
});
