/**
 * The `switchboard` command. For now `serve` starts a node with the embedded store that
 * answers /healthz; the hub node (HTTP API and sockets) lands with the next issue.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { MemoryStore } from '../stores/memory/store.js';

const [command = 'serve'] = process.argv.slice(2);
if (command !== 'serve') {
  process.stderr.write(`unknown command: ${command}\nusage: switchboard serve\n`);
  process.exit(2);
}
const store = new MemoryStore();
const app = new Hono();
app.get('/healthz', (c) => c.json({ ok: true, store: store.kind }));
const port = Number(process.env.PORT ?? 8080);
serve({ fetch: app.fetch, port, hostname: process.env.HOST ?? '0.0.0.0' }, (info) => {
  process.stdout.write(`switchboard listening on http://127.0.0.1:${info.port}\n`);
});
