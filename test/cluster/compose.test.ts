/**
 * docker-compose.yml cannot be started here (no Docker engine), so this test holds it to
 * what can be checked: every hub service's environment passes the configuration schema
 * and equals the local cluster runner's (src/cluster/env.ts) but for placement, Redis is
 * configured as the runner configures it, and the load balancer knows every hub.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { clusterNodeEnv, PLACEMENT_VARIABLES, REDIS_SERVER_ARGS } from '../../src/cluster/env.js';
import { ConfigSchema } from '../../src/config.js';

interface Service {
  environment?: Record<string, string | number>;
  command?: string[];
  image?: string;
  build?: string;
  healthcheck?: { test: string[] };
}
const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const hubs = Object.entries(compose.services).filter(([name]) => /^hub-\d+$/.test(name));
const SECRET = 'x'.repeat(48);

/** Compose's `${VAR:?message}` interpolation, with the values an operator would set. */
function interpolate(value: string | number): string {
  return String(value).replace(/\$\{(\w+)(:\?[^}]*)?\}/g, (_, name: string) => {
    if (name === 'HUB_SECRET') return SECRET;
    throw new Error(`unexpected variable ${name} in a hub environment`);
  });
}

describe('docker-compose.yml', () => {
  it('has three hub services, a load balancer, Redis and an example daemon, all health-checked', () => {
    expect(hubs.map(([name]) => name)).toEqual(['hub-1', 'hub-2', 'hub-3']);
    for (const name of ['redis', 'lb', 'daemon', 'hub-1', 'hub-2', 'hub-3']) {
      expect(compose.services[name]?.healthcheck?.test, name).toBeDefined();
    }
  });

  it.each(hubs)('%s: its environment passes the configuration schema', (name, service) => {
    const env = Object.fromEntries(
      Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(v)]),
    );
    const parsed = ConfigSchema.safeParse(env);
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data).toMatchObject({
      nodeId: name,
      devMode: false,
      redisUrl: 'redis://redis:6379',
    });
  });

  it.each(hubs)(
    '%s: the same variables and values as the local cluster runner',
    (name, service) => {
      const index = Number(name.slice('hub-'.length));
      const runner = clusterNodeEnv(index, {
        port: 8081,
        host: '127.0.0.1',
        redisUrl: 'redis://127.0.0.1:6380',
        secret: SECRET,
      });
      const composed = Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v)]),
      );
      expect(Object.keys(composed).sort()).toEqual(Object.keys(runner).sort());
      const placement = new Set<string>(PLACEMENT_VARIABLES);
      for (const [key, value] of Object.entries(runner)) {
        if (!placement.has(key)) expect(composed[key], key).toBe(value);
      }
    },
  );

  it('runs Redis with AOF and no eviction, as the runner does', () => {
    const command = compose.services.redis?.command ?? [];
    expect(command[0]).toBe('redis-server');
    expect(command.slice(1)).toEqual([...REDIS_SERVER_ARGS]);
  });

  it('puts every hub behind the load balancer, with websocket upgrades', () => {
    const nginx = readFileSync('deploy/nginx.conf', 'utf8');
    for (const [name] of hubs) expect(nginx).toContain(`server ${name}:8080`);
    expect(nginx).toMatch(/proxy_set_header Upgrade \$http_upgrade/);
  });

  it('builds a non-root image that serves by default', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^CMD \["serve"\]$/m);
    expect((dockerfile.match(/^FROM /gm) ?? []).length).toBeGreaterThanOrEqual(2);
  });

  it('runs the compiled bin, built from the lock file, with no build tools in the image', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
      bin: Record<string, string>;
      files: string[];
    };
    const bin = (pkg.bin.switchboard ?? '').replace(/^\.\//, '');
    const stages = readFileSync('Dockerfile', 'utf8')
      .split(/^(?=FROM )/m)
      .filter((stage) => stage.startsWith('FROM '));
    const runtime = stages.at(-1) ?? '';
    const entrypoint = /^ENTRYPOINT (.+)$/m.exec(runtime)?.[1];
    expect(JSON.parse(entrypoint ?? 'null')).toEqual(['node', bin]);
    // The runtime stage gets package.json, production node_modules and the built files.
    const copies = [...runtime.matchAll(/^COPY (.+)$/gm)].map((m) => m[1]);
    expect(copies).toEqual([
      'package.json ./',
      '--from=deps /app/node_modules ./node_modules',
      '--from=build /app/dist ./dist',
    ]);
    expect(pkg.files).toEqual(['dist', 'CHANGELOG.md']);
    expect(bin.startsWith('dist/')).toBe(true);
    expect(runtime).not.toMatch(/^RUN /m);
    // Every install is `npm ci` (the lock file, exactly); production deps skip dev tools.
    const installs = [...stages.join('').matchAll(/^RUN (npm .+)$/gm)].map((m) => m[1] as string);
    expect(installs.filter((c) => /^npm (install|i) /.test(c))).toEqual([]);
    expect(installs).toContain('npm run build');
    const deps = stages.find((stage) => /^FROM \S+ AS deps$/m.test(stage)) ?? '';
    expect(deps).toMatch(/^RUN npm ci --omit=dev .*--ignore-scripts/m);
    // The example daemon's health check looks for the process the image runs.
    expect(compose.services.daemon?.healthcheck?.test.join(' ')).toContain(`${bin} daemon`);
  });
});
