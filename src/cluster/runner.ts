/**
 * The local cluster runner (`npm run cluster -- --nodes 3`): what docker-compose.yml
 * runs, on this machine without Docker. A private redis-server (AOF, noeviction) and N
 * hub node processes with exactly the environment compose gives them (src/cluster/env.ts),
 * on consecutive ports. Prints the URLs and tokens; Ctrl-C stops everything.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Auth } from '../auth.js';
import { clusterNodeEnv, REDIS_SERVER_ARGS } from './env.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    port: { type: 'string', default: '8081' },
    'redis-port': { type: 'string', default: '6380' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run cluster -- [--nodes 3] [--port 8081] [--redis-port 6380]\n' +
      '  starts redis-server and N hub nodes (ports PORT, PORT+1, ...); Ctrl-C stops them\n',
  );
  process.exit(0);
}
const nodes = Number(values.nodes);
const basePort = Number(values.port);
const redisPort = Number(values['redis-port']);
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) {
  process.stderr.write('cluster: --nodes must be a whole number from 1 to 16\n');
  process.exit(2);
}

const children: ChildProcess[] = [];
let stopping = false;
function stop(code = 0): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  const hard = setTimeout(() => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(code);
  }, 15_000);
  hard.unref();
  Promise.all(
    children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))),
  ).then(() => process.exit(code));
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

function run(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = `[${name}] `;
  const forward = (stream: NodeJS.WritableStream) => (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) stream.write(`${prefix}${line}\n`);
  };
  child.stdout?.on('data', forward(process.stdout));
  child.stderr?.on('data', forward(process.stderr));
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`${prefix}exited (${signal ?? code}); stopping the cluster\n`);
      stop(1);
    }
  });
  children.push(child);
  return child;
}

async function waitFor(url: string, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready at ${url}`);
}

const secret = process.env.HUB_SECRET ?? randomBytes(32).toString('base64url');
const dir = mkdtempSync(join(tmpdir(), 'switchboard-cluster-'));
run(
  'redis',
  'redis-server',
  ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, ...REDIS_SERVER_ARGS],
  process.env,
);
const redisUrl = `redis://127.0.0.1:${redisPort}`;

// The CLI next to this module: src/cli.ts when run through tsx (whose loader is in
// execArgv, so the children get it too), dist/src/cli.js when run compiled.
const cli = fileURLToPath(
  new URL(`../cli${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
);
const urls: string[] = [];
for (let i = 1; i <= nodes; i++) {
  const port = basePort + i - 1;
  const env = clusterNodeEnv(i, { port, host: '127.0.0.1', redisUrl, secret });
  run(`hub-${i}`, process.execPath, [...process.execArgv, cli, 'serve'], {
    ...process.env,
    ...env,
  });
  urls.push(`http://127.0.0.1:${port}`);
}
try {
  await Promise.all(urls.map((u, i) => waitFor(`${u}/readyz`, `hub-${i + 1}`)));
} catch (err) {
  process.stderr.write(`cluster: ${(err as Error).message}\n`);
  stop(1);
}
const auth = new Auth(secret);
const client = await auth.sign({ sub: 'cluster-client', ws: 'dev', role: 'client' }, '30d');
const daemon = await auth.sign(
  { sub: 'cluster-daemon', ws: 'dev', role: 'daemon', rt: 'demo' },
  '30d',
);
process.stdout.write(
  `\nSwitchboard cluster: ${nodes} nodes on ${redisUrl} (data in ${dir})\n` +
    urls.map((u, i) => `  hub-${i + 1}  ${u}\n`).join('') +
    `\nHUB_SECRET=${secret}\nclient token (workspace "dev"):\n  ${client}\n` +
    `daemon token (runtime "demo"):\n  ${daemon}\n\n` +
    `try: npx switchboard daemon ${urls.map((u) => `--url ${u}`).join(' ')} --token <daemon token> --echo\n` +
    'Ctrl-C stops everything.\n\n',
);
