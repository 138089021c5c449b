/**
 * The package as a user gets it: `npm pack` (which builds dist/ through `prepare`), the
 * tarball installed into a fresh project with no TypeScript tooling, and there, with
 * plain `node`: the installed `switchboard serve` on a private redis-server (so the
 * copied Lua scripts and the built browser bundle are what runs), a daemon written
 * against `import { connectDaemon } from 'switchboard'` completing a request a client
 * created over HTTP, and `switchboard --help`. Then a consumer `.ts` file type-checked
 * under `strict` against the installed declarations.
 *
 * This is the only test that writes the repository's dist/ (npm pack builds it); no
 * other test reads dist/.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uiRoutes } from '../../src/ui/routes.js';
import { api, clientToken, daemonToken, SECRET } from '../helpers/node.js';
import { freePort, RedisServer } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = promisify(execFile);

/**
 * The environment for child processes: no npm script variables from an `npm test` run
 * (they describe this repository, not the temporary project) and no NODE_OPTIONS (a
 * loader there would hide a package that needs one).
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  for (const [key, value] of Object.entries(process.env)) {
    if (key === 'NODE_OPTIONS' || (/^npm_/i.test(key) && !keep.has(key))) continue;
    env[key] = value;
  }
  // The installed bin's `#!/usr/bin/env node` must find this node.
  env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${env.PATH ?? ''}`;
  return { ...env, ...extra };
}

interface PackedFile {
  path: string;
  size: number;
}

let tmp: string;
let project: string;
let packed: { filename: string; size: number; entryCount: number; files: PackedFile[] };
const children = new Set<ChildProcess>();

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'switchboard-pack-'));
  // npm prints the build's own output on stdout too; the JSON report is the last thing.
  const { stdout } = await run(NPM, ['pack', '--pack-destination', tmp, '--json'], {
    cwd: ROOT,
    env: cleanEnv(),
    maxBuffer: 16 * 1024 * 1024,
  });
  const report = stdout.search(/^\[$/m);
  expect(report, stdout).toBeGreaterThanOrEqual(0);
  packed = JSON.parse(stdout.slice(report))[0];

  project = path.join(tmp, 'project');
  mkdirSync(project);
  writeFileSync(
    path.join(project, 'package.json'),
    `${JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2)}\n`,
  );
  await run(
    NPM,
    [
      'install',
      path.join(tmp, packed.filename),
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
    ],
    { cwd: project, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 },
  );
}, 300_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A process in the temporary project, with its output kept and its exit awaited. */
function start(command: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(command, args, {
    cwd: project,
    env: cleanEnv(env),
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
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  /** Resolves when stdout has a line matching `pattern`; rejects if the process exits. */
  const line = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = out.split('\n').find((l) => pattern.test(l));
        if (found !== undefined) {
          child.stdout?.off('data', check);
          resolve(found);
        }
      };
      child.stdout?.on('data', check);
      void exited.then((code) =>
        reject(new Error(`exited ${code} before ${pattern}:\n${out}${err}`)),
      );
      check();
    });
  return { child, exited, line, stdout: () => out, stderr: () => err };
}

const installed = (...parts: string[]) => path.join(project, 'node_modules', ...parts);

describe('npm pack', () => {
  it('ships compiled JavaScript and declarations, no TypeScript sources', () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toContain('dist/src/index.js');
    expect(paths).toContain('dist/src/index.d.ts');
    expect(paths).toContain('dist/src/cli.js');
    expect(paths).toContain('dist/src/ui/browser.bundle.js');
    expect(paths).toContain('dist/stores/redis/lua/claim.lua');
    expect(paths).toContain('dist/stores/redis/lua/includes/common.lua');
    expect(paths).toContain('dist/src/ui/index.html');
    expect(paths.filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts'))).toEqual([]);
    expect(paths.filter((p) => !p.startsWith('dist/')).sort()).toEqual([
      'CHANGELOG.md',
      'README.md',
      'package.json',
    ]);
    expect(paths.some((p) => p.startsWith('dist/test/') || p.startsWith('dist/bench/'))).toBe(
      false,
    );
  });

  it('installs without TypeScript tooling or bundlers', () => {
    expect(existsSync(installed('switchboard', 'dist', 'src', 'index.js'))).toBe(true);
    for (const tool of ['tsx', 'esbuild', 'vite', 'typescript', '@esbuild']) {
      expect(existsSync(installed(tool)), tool).toBe(false);
    }
  });
});

describe('the installed package, run by plain node', () => {
  let redis: RedisServer;
  let node: ReturnType<typeof start>;
  let url: string;

  beforeAll(async () => {
    redis = await RedisServer.start();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    node = start(installed('.bin', 'switchboard'), ['serve'], {
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: redis.url,
      HUB_SECRET: SECRET,
      NODE_ID: 'installed',
      LOG_LEVEL: 'info',
    });
    await node.line(/switchboard node listening/);
  }, 60_000);

  afterAll(async () => {
    if (node && node.child.exitCode === null) {
      node.child.kill('SIGTERM');
      await node.exited;
    }
    await redis?.close();
  });

  it('serves: ready on Redis, with the browser bundle built from the same sources', async () => {
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    const served = await fetch(`${url}/client/browser.js`);
    const code = await served.text();
    expect(code).toBe(
      readFileSync(installed('switchboard', 'dist', 'src', 'ui', 'browser.bundle.js'), 'utf8'),
    );
    // A node run from sources bundles in memory with the same options: the same bytes.
    const fromSources = await (await uiRoutes().request('/client/browser.js')).text();
    expect(createHash('sha256').update(code).digest('hex')).toBe(
      createHash('sha256').update(fromSources).digest('hex'),
    );
  });

  it("a daemon importing 'switchboard' completes a request created over HTTP", async () => {
    writeFileSync(
      path.join(project, 'daemon.mjs'),
      [
        "import { connectDaemon } from 'switchboard';",
        'const daemon = connectDaemon({',
        '  url: process.env.HUB_URL,',
        '  token: process.env.DAEMON_TOKEN,',
        '  handlers: { upper: async (payload) => String(payload).toUpperCase() },',
        '});',
        "daemon.on('state', (state) => console.log('state ' + state));",
        "process.on('SIGTERM', () => daemon.close().then(() => process.exit(0)));",
        '',
      ].join('\n'),
    );
    const daemon = start(process.execPath, ['daemon.mjs'], {
      HUB_URL: url,
      DAEMON_TOKEN: await daemonToken('installed'),
    });
    await daemon.line(/state socket/);
    const token = await clientToken();
    const hub = { url };
    const created = await api(hub, 'POST', '/v1/runtimes/installed/requests', {
      token,
      body: { kind: 'upper', payload: 'from a plain node project' },
    });
    expect(created.status).toBe(201);
    const done = await api(
      hub,
      'GET',
      `/v1/runtimes/installed/requests/${created.body.id}?wait_ms=20000`,
      { token },
    );
    expect(done).toMatchObject({
      status: 200,
      body: { status: 'completed', result: 'FROM A PLAIN NODE PROJECT' },
    });
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(daemon.stderr()).toBe('');
  });

  it('switchboard --help runs the installed bin', async () => {
    const help = start(installed('.bin', 'switchboard'), ['--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toContain('usage: switchboard <command>');
    expect(help.stderr()).toBe('');
  });
});

describe('the installed declarations', () => {
  it('type-check a consumer under strict', async () => {
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      `${JSON.stringify(
        {
          compilerOptions: {
            strict: true,
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            target: 'ES2022',
            noEmit: true,
            skipLibCheck: false,
          },
          files: ['consumer.ts'],
        },
        null,
        2,
      )}\n`,
    );
    writeFileSync(
      path.join(project, 'consumer.ts'),
      `import {
  connectDaemon,
  type Daemon,
  type DaemonState,
  type Handler,
  loadConfig,
  OutputError,
  type OutputErrorCode,
  type Request,
  type RuntimeInfo,
  type Status,
  startNode,
  type SwitchboardNode,
} from 'switchboard';
import { connectDaemon as connect, type DaemonOptions } from 'switchboard/daemon';
import { type Client, createClient, SwitchboardError } from 'switchboard/browser';

const upper: Handler = async (payload, ctx) => {
  if (ctx.signal.aborted) throw new Error('aborted');
  return String(payload).toUpperCase();
};
const options: DaemonOptions = { url: 'http://127.0.0.1:8080', token: 't', handlers: { upper } };
const daemon: Daemon = connectDaemon(options);
const same: Daemon = connect(options);
daemon.on('state', (state: DaemonState) => console.log(state));
void same.close();

const streamed: Handler = async (_payload, ctx) => {
  try {
    await ctx.output({ progress: 1 });
  } catch (err) {
    const code: OutputErrorCode | undefined = err instanceof OutputError ? err.code : undefined;
    return code;
  }
  return null;
};
void streamed;

// @ts-expect-error: the url is a string (or several), not a number
connectDaemon({ url: 8080, token: 't', handlers: {} });

async function embed(): Promise<SwitchboardNode> {
  const node = await startNode({ config: loadConfig({ PORT: '0' }) });
  console.log(node.url);
  return node;
}
void embed;

const client: Client = createClient({ url: 'http://127.0.0.1:8080', token: 't' });
async function send(): Promise<Request> {
  try {
    return await client.send('laptop', 'upper', 'x');
  } catch (err) {
    if (err instanceof SwitchboardError) console.log(err.status, err.code);
    throw err;
  }
}
void send;
const status: Status = 'completed';
const runtimes: RuntimeInfo[] = [];
console.log(status, runtimes.length);
`,
    );
    const res = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], {
      cwd: project,
      env: cleanEnv(),
    }).catch((err: { stdout: string; stderr: string; code: number }) => err);
    expect(`${res.stdout}${res.stderr}`).toBe('');
    // Nothing reached for a types package the project did not get through ours.
    expect(existsSync(installed('@types', 'ws'))).toBe(true);
  }, 120_000);
});
