#!/usr/bin/env node
/**
 * The `switchboard` command.
 *
 *   switchboard serve                 run a node (configuration from the environment)
 *   switchboard token --role client --workspace acme [--runtime R] [--ttl 30d]
 *   switchboard daemon --url U --token T [--capacity N] (--handlers ./module.js | --echo)
 *
 * Example: `HUB_SECRET=... switchboard token --role daemon --workspace acme --runtime laptop`
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Auth } from './auth.js';
import { connectDaemon, type Handler } from './client/daemon.js';
import { echoHandlers } from './client/echo.js';
import { ConfigError, loadConfig } from './config.js';
import { type SwitchboardNode, startNode } from './node.js';

const DEV_WORKSPACE = 'dev';
const DEV_RUNTIME = 'demo';

const USAGE = `usage: switchboard <command> [options]

commands:
  serve    run a hub node; configured by environment variables (see README)
  token    mint a token: --role client|daemon --workspace W [--runtime R] [--ttl 30d] [--sub S]
           signs with HUB_SECRET from the environment
  daemon   run a daemon: --url U --token T [--capacity N] (--handlers ./module.js | --echo)

run 'switchboard <command> --help' for a command's options`;

async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help')) {
    process.stdout.write('usage: switchboard serve\n\nruns a node; see README "Configuration"\n');
    return;
  }
  const config = loadConfig();
  if (!config.devMode) {
    await stopOnSignal(await startNode({ config }));
    return;
  }
  const auth = new Auth(config.hubSecret);
  const client = await auth.sign({ sub: 'dev-client', ws: DEV_WORKSPACE, role: 'client' }, '30d');
  const daemon = await auth.sign(
    { sub: 'dev-daemon', ws: DEV_WORKSPACE, role: 'daemon', rt: DEV_RUNTIME },
    '30d',
  );
  const node = await startNode({ config, devClientToken: client });
  const curlBody = `'{"kind":"echo","payload":{"hello":"world"}}'`;
  process.stdout.write(
    `\nSwitchboard in dev mode (embedded store, random secret): ${node.url}\n\n` +
      `  dashboard     ${node.url}/   (signed in as the dev client)\n` +
      `  client token  (workspace "${DEV_WORKSPACE}")\n    ${client}\n` +
      `  daemon token  (runtime "${DEV_RUNTIME}")\n    ${daemon}\n\n` +
      `Start a daemon that echoes, in another terminal:\n` +
      `  npx switchboard daemon --url ${node.url} --echo --token ${daemon}\n\n` +
      `Send it a request and wait for the result:\n` +
      `  curl -s ${node.url}/v1/runtimes/${DEV_RUNTIME}/requests -H 'Authorization: Bearer ${client}' -d ${curlBody}\n` +
      `  curl -s '${node.url}/v1/runtimes/${DEV_RUNTIME}/requests/<id>?wait_ms=30000' -H 'Authorization: Bearer ${client}'\n\n`,
  );
  await stopOnSignal(node);
}

/** Stops the node gracefully on SIGTERM or SIGINT (drain, then exit 0). */
async function stopOnSignal(node: SwitchboardNode): Promise<void> {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    node.hub.logger.info({ signal }, 'shutting down');
    void node.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function token(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      role: { type: 'string' },
      workspace: { type: 'string' },
      runtime: { type: 'string' },
      ttl: { type: 'string', default: '30d' },
      sub: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: switchboard token --role client|daemon --workspace W [--runtime R] [--ttl 30d] [--sub S]\n' +
        '  signs an HS256 token with HUB_SECRET; --runtime is required for --role daemon\n',
    );
    return;
  }
  const secret = process.env.HUB_SECRET;
  if (!secret) throw new UsageError('HUB_SECRET is not set: export the secret your nodes use');
  if (values.role !== 'client' && values.role !== 'daemon') {
    throw new UsageError('--role must be client or daemon');
  }
  if (!values.workspace) throw new UsageError('--workspace is required');
  if (values.role === 'daemon' && !values.runtime) {
    throw new UsageError('--runtime is required for a daemon token');
  }
  const auth = new Auth(secret);
  const jwt = await auth.sign(
    {
      sub: values.sub ?? `${values.role}-${values.runtime ?? values.workspace}`,
      ws: values.workspace,
      role: values.role,
      ...(values.role === 'daemon' ? { rt: values.runtime } : {}),
    },
    values.ttl,
  );
  process.stdout.write(`${jwt}\n`);
}

const DAEMON_USAGE = `usage: switchboard daemon --url U --token T [--capacity N] (--handlers ./module.js | --echo)

  --url        the hub's URL, e.g. http://127.0.0.1:8080 (or SWITCHBOARD_URL);
               repeat it to give several nodes, tried in turn
  --token      a daemon token (or SWITCHBOARD_TOKEN); mint one with
               'switchboard token --role daemon --workspace W --runtime R'
  --capacity   most requests handled at once (default 1)
  --handlers   a JS module whose default export (or export 'handlers') maps a request
               kind to an async function (payload, ctx) => result; '*' handles any kind
               (a .ts module needs a TypeScript loader in the node, e.g. --import tsx)
  --echo       answer every request with its own payload, for trying things out;
               kind 'stream' with payload {"chunks": N, "size": S} (default 10 and 16)
               first streams N chunks of output, strings of S characters "1:...",
               "2:...", then answers {"chunks": N}`;

async function daemon(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', multiple: true },
      token: { type: 'string' },
      capacity: { type: 'string', default: '1' },
      handlers: { type: 'string' },
      echo: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${DAEMON_USAGE}\n`);
    return;
  }
  const urls = values.url ?? (process.env.SWITCHBOARD_URL ? [process.env.SWITCHBOARD_URL] : []);
  const jwt = values.token ?? process.env.SWITCHBOARD_TOKEN;
  if (urls.length === 0) throw new UsageError(`--url is required\n\n${DAEMON_USAGE}`);
  if (!jwt) throw new UsageError(`--token is required\n\n${DAEMON_USAGE}`);
  const capacity = Number(values.capacity);
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1000) {
    throw new UsageError('--capacity must be a whole number from 1 to 1000');
  }
  if (!values.echo && !values.handlers) {
    throw new UsageError(`give --handlers ./module.js or --echo\n\n${DAEMON_USAGE}`);
  }
  const handlers: Record<string, Handler> = values.echo
    ? echoHandlers
    : await loadHandlers(values.handlers as string);
  const d = connectDaemon({ url: urls, token: jwt, capacity, handlers });
  const say = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  d.on('state', (state) => say(`state ${state}`));
  d.on('request', (r) => say(`request ${r.id} ${r.kind} (attempt ${r.attempt})`));
  d.on('reported', (r) =>
    say(`reported ${r.id} ${r.status}${r.accepted ? '' : ' (not accepted: lease lost)'}`),
  );
  say(`daemon for ${urls.join(', ')} with capacity ${capacity}${values.echo ? ', echoing' : ''}`);
  const stop = () => void d.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function loadHandlers(file: string): Promise<Record<string, Handler>> {
  let mod: { default?: unknown; handlers?: unknown };
  try {
    mod = await import(pathToFileURL(resolve(file)).href);
  } catch (err) {
    throw new UsageError(`cannot load --handlers ${file}: ${(err as Error).message}`);
  }
  const table = mod.handlers ?? mod.default;
  if (!table || typeof table !== 'object') {
    throw new UsageError(
      `--handlers ${file} must export (default or 'handlers') an object of kind -> function`,
    );
  }
  for (const [kind, fn] of Object.entries(table)) {
    if (typeof fn !== 'function')
      throw new UsageError(`--handlers ${file}: '${kind}' is not a function`);
  }
  return table as Record<string, Handler>;
}

class UsageError extends Error {}

const commands: Record<string, (argv: string[]) => Promise<void>> = { serve, token, daemon };
const [command, ...rest] = process.argv.slice(2);

if (!command || command === '--help' || command === 'help') {
  process.stdout.write(`${USAGE}\n`);
} else if (!commands[command]) {
  process.stderr.write(`switchboard: unknown command "${command}"\n\n${USAGE}\n`);
  process.exit(2);
} else {
  commands[command](rest).catch((err: unknown) => {
    const known =
      err instanceof ConfigError || err instanceof UsageError || err instanceof TypeError;
    process.stderr.write(
      `switchboard ${command}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    if (!known) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    process.exit(known ? 2 : 1);
  });
}
