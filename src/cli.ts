#!/usr/bin/env node
/**
 * The `switchboard` command.
 *
 *   switchboard serve                 run a node (configuration from the environment)
 *   switchboard token --role client --workspace acme [--runtime R] [--ttl 30d]
 *
 * Example: `HUB_SECRET=... switchboard token --role daemon --workspace acme --runtime laptop`
 */
import { parseArgs } from 'node:util';
import { Auth } from './auth.js';
import { ConfigError, loadConfig } from './config.js';
import { startNode } from './node.js';

const DEV_WORKSPACE = 'dev';
const DEV_RUNTIME = 'demo';

const USAGE = `usage: switchboard <command> [options]

commands:
  serve    run a hub node; configured by environment variables (see README)
  token    mint a token: --role client|daemon --workspace W [--runtime R] [--ttl 30d] [--sub S]
           signs with HUB_SECRET from the environment

run 'switchboard <command> --help' for a command's options`;

async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help')) {
    process.stdout.write('usage: switchboard serve\n\nruns a node; see README "Configuration"\n');
    return;
  }
  const config = loadConfig();
  const node = await startNode({ config });
  if (config.devMode) {
    const client = await node.auth.sign(
      { sub: 'dev-client', ws: DEV_WORKSPACE, role: 'client' },
      '30d',
    );
    const daemon = await node.auth.sign(
      { sub: 'dev-daemon', ws: DEV_WORKSPACE, role: 'daemon', rt: DEV_RUNTIME },
      '30d',
    );
    process.stdout.write(
      `\nSwitchboard (dev mode: embedded store, random secret) at ${node.url}\n\n` +
        `client token (workspace "${DEV_WORKSPACE}"):\n  ${client}\n\n` +
        `daemon token (runtime "${DEV_RUNTIME}"):\n  ${daemon}\n\n`,
    );
  }
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

class UsageError extends Error {}

const commands: Record<string, (argv: string[]) => Promise<void>> = { serve, token };
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
