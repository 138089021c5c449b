/**
 * The dashboard: runtimes with presence and counts, a live feed of requests, and a form
 * to send one and watch its result. Everything live comes through the browser client's
 * one websocket: the workspace's presence (`watchRuntimes`: runtimes that appear later
 * show up by themselves) and a subscription per runtime for its requests. The runtime
 * list is read once from GET /v1/runtimes at start (and on Refresh or when the tab comes
 * back), and a runtime's counts are re-read (debounced) when its requests change.
 *
 * A request's output (DESIGN.md section 6) streams into its views as it comes, through
 * `client.onOutput` on the same socket: the request the form sent shows it under its
 * result, and a feed item shows it when its "output" is opened (the whole output of a
 * finished request, or live while it runs). One line per chunk: a string as it is,
 * anything else as JSON. Chunks are appended to persistent nodes, never re-rendered.
 *
 * Above them, the workspace's last 15 minutes drawn from GET /v1/stats (./charts.js,
 * uPlot), re-read every STATS_EVERY_MS while the tab is visible; below, the request
 * explorer (./explorer.js): the list with filters, a request's detail, and the failed
 * and timed-out requests with bulk retry. Both use plain HTTP with the token.
 *
 * No framework: state in a few maps, rendering with textContent only (no HTML from data).
 */
import { createClient } from '/client/browser.js';
import { statsCharts } from '/ui/charts.js';
import { createExplorer } from '/ui/explorer.js';

const TOKEN_KEY = 'switchboard.token';
const FEED_LIMIT = 200;
const COUNTS_DEBOUNCE_MS = 250;
const STATS_EVERY_MS = 5_000;

const TERMINAL = new Set(['completed', 'failed', 'timeout', 'cancelled']);

const $ = (id) => document.getElementById(id);

const state = {
  client: null,
  /** the token in use, for the HTTP reads the browser client has no call for */
  token: '',
  statsTimer: null,
  /** runtime name -> runtime_info (or a stub until one arrives) */
  runtimes: new Map(),
  /** runtime name -> the `tick` at which the info shown was read (newer reads win) */
  readAt: new Map(),
  /** runtime name -> unsubscribe */
  subscriptions: new Map(),
  /** request id -> { request, at } (at: when it last changed, for newest-first order) */
  feed: new Map(),
  /** runtime name -> debounce timer for re-reading its counts */
  countTimers: new Map(),
  renderQueued: false,
  /** id of the request the form sent last */
  sentId: null,
  /** request id -> its output as followed (see `followOutput`) */
  outputs: new Map(),
  /** ids whose feed item has its output opened */
  openOutputs: new Set(),
};

// ---------------------------------------------------------------- token and start

function devToken() {
  return document.querySelector('meta[name="switchboard-token"]')?.getAttribute('content') || '';
}

function start() {
  for (const el of document.querySelectorAll('.origin')) el.textContent = location.origin;
  const dev = devToken();
  if (dev) {
    connect(dev);
    return;
  }
  $('change-token').hidden = false;
  $('change-token').addEventListener('click', () => showTokenPanel(''));
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token-input').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token-input').value = '';
    connect(token);
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) connect(saved);
  else showTokenPanel('');
}

function showTokenPanel(message) {
  disconnect();
  sessionStorage.removeItem(TOKEN_KEY);
  $('main').hidden = true;
  $('token-panel').hidden = false;
  $('token-error').textContent = message;
  $('workspace').textContent = '';
  setConnection('signed-out', 'signed out');
  $('token-input').focus();
}

function workspaceOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part)).ws ?? '';
  } catch {
    return '';
  }
}

async function connect(token) {
  disconnect();
  state.client = createClient({ url: location.origin, token });
  state.token = token;
  $('token-panel').hidden = true;
  $('main').hidden = false;
  const ws = workspaceOf(token);
  $('workspace').textContent = ws ? `workspace ${ws}` : '';
  setConnection('connecting', 'connecting');
  try {
    await refreshRuntimes();
    if (state.client) {
      state.subscriptions.set('*', state.client.watchRuntimes(onWorkspaceEvent));
      startStats();
      quietly(explorer.load());
    }
  } catch (err) {
    if (err?.status === 401 || err?.status === 403) {
      const why = err.status === 401 ? 'was refused' : 'is not a client token';
      if (devToken()) setConnection('error', `token ${why}`);
      else showTokenPanel(`That token ${why}: ${err.message}`);
    } else {
      setConnection('error', `hub unreachable: ${err?.message ?? err}`);
    }
  }
}

function disconnect() {
  clearInterval(state.statsTimer);
  state.statsTimer = null;
  state.token = '';
  for (const off of state.subscriptions.values()) off();
  state.subscriptions.clear();
  state.client?.close();
  state.client = null;
  state.runtimes.clear();
  state.readAt.clear();
  state.feed.clear();
  for (const out of state.outputs.values()) out.stop();
  state.outputs.clear();
  state.openOutputs.clear();
  attachOutput(sentView, null);
  for (const t of state.countTimers.values()) clearTimeout(t);
  state.countTimers.clear();
  scheduleRender();
}

// ---------------------------------------------------------------- runtimes

/**
 * Socket frames and HTTP reads race: a read sent before a presence change can answer
 * after the frame that announced it. Every read takes a tick when it is sent (a frame
 * when it arrives) and only replaces info read at an earlier tick.
 */
let tick = 0;
const nextTick = () => ++tick;

function setRuntime(info, at) {
  if ((state.readAt.get(info.id) ?? 0) > at) return;
  state.readAt.set(info.id, at);
  state.runtimes.set(info.id, info);
  scheduleRender();
}

let refreshing = null;
let refreshAgain = false;

/**
 * Reads the workspace's runtimes and subscribes to any not yet watched. Asked again
 * while a read is out, it reads once more after it, so the answer is never older than
 * the ask.
 */
function refreshRuntimes() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      do {
        refreshAgain = false;
        const client = state.client;
        if (!client) return;
        const at = nextTick();
        let list;
        try {
          list = await client.runtimes();
        } catch (err) {
          if (client === state.client) throw err;
          continue; // signed out or switched tokens meanwhile: the new client asked again
        }
        if (client !== state.client) continue;
        for (const info of list) setRuntime(info, at);
        for (const info of list) watch(info.id);
      } while (refreshAgain);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function quietly(promise) {
  promise.catch((err) => console.warn('switchboard dashboard:', err));
}

/**
 * A JSON call to the hub with the token (the reads the browser client has no call for:
 * the list, retry, stats). Rejects with an Error carrying the API's `code` and `status`.
 */
async function api(path, init = {}) {
  const res = await fetch(path, {
    ...init,
    headers: { authorization: `Bearer ${state.token}`, ...(init.headers ?? {}) },
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error(body?.error?.message ?? `HTTP ${res.status}`);
    err.code = body?.error?.code ?? 'http_error';
    err.status = res.status;
    throw err;
  }
  return body;
}

// ---------------------------------------------------------------- stats

let charts = null;

function startStats() {
  clearInterval(state.statsTimer);
  state.statsTimer = setInterval(() => {
    if (document.visibilityState === 'visible') quietly(readStats());
  }, STATS_EVERY_MS);
  quietly(readStats());
}

async function readStats() {
  const client = state.client;
  try {
    const stats = await api('/v1/stats');
    if (client !== state.client) return;
    charts ??= statsCharts($('charts'));
    charts.update(stats);
    $('stats-error').textContent = '';
    $('stats-updated').textContent = `updated ${time(stats.now)}`;
    $('charts').dataset.now = stats.now;
  } catch (err) {
    if (client === state.client) $('stats-error').textContent = `stats: ${err.message}`;
  }
}

/** Subscribes to a runtime (presence and every request of it), once. */
function watch(runtime) {
  if (!state.client || state.subscriptions.has(runtime)) return;
  if (!state.runtimes.has(runtime)) state.runtimes.set(runtime, stubRuntime(runtime));
  state.subscriptions.set(
    runtime,
    state.client.subscribe(runtime, (event) => onEvent(runtime, event)),
  );
  scheduleRender();
}

/** Presence of the whole workspace: a runtime seen for the first time gets watched. */
function onWorkspaceEvent(event) {
  if (event.type === 'runtime') {
    setRuntime(event.runtime_info, nextTick());
    watch(event.runtime_info.id);
  } else if (event.type === 'connection') {
    showMode(event.mode);
  }
}

function stubRuntime(id) {
  return { id, online: false, last_seen_at: null, connections: [], pending: 0, running: 0 };
}

function onEvent(runtime, event) {
  switch (event.type) {
    case 'snapshot':
      setRuntime(event.runtime_info, nextTick());
      for (const r of event.requests) remember(r, changedAt(r));
      break;
    case 'request':
      remember(event.request, Date.now());
      explorer.onRequest(event.request);
      recountSoon(runtime);
      if (event.request.id === state.sentId) showSent(event.request);
      break;
    case 'runtime':
      setRuntime(event.runtime_info, nextTick());
      break;
    case 'connection':
      showMode(event.mode);
      break;
    case 'error':
      console.warn('switchboard:', event.code, event.message);
      break;
  }
  scheduleRender();
}

/** Pending and running counts change with every request: re-read them, debounced. */
function recountSoon(runtime) {
  if (state.countTimers.has(runtime)) return;
  const client = state.client;
  state.countTimers.set(
    runtime,
    setTimeout(async () => {
      state.countTimers.delete(runtime);
      try {
        const at = nextTick();
        const info = await client.runtime(runtime);
        if (client === state.client) setRuntime(info, at);
      } catch {
        // the next change tries again
      }
    }, COUNTS_DEBOUNCE_MS),
  );
}

const MODES = {
  idle: ['idle', 'idle'],
  connecting: ['connecting', 'connecting'],
  open: ['live', 'live'],
  backoff: ['reconnecting', 'reconnecting'],
  unavailable: ['error', 'no websocket: results by long-poll'],
  closed: ['idle', 'closed'],
};

function showMode(mode) {
  const [kind, text] = MODES[mode] ?? ['idle', mode];
  setConnection(kind, text);
}

function setConnection(kind, text) {
  const el = $('connection');
  el.dataset.mode = kind;
  el.textContent = text;
}

// ---------------------------------------------------------------- feed

function changedAt(r) {
  return Date.parse(r.finished_at ?? r.claimed_at ?? r.created_at) || 0;
}

/**
 * How far along a request is. HTTP answers and socket frames race (a 201 can arrive
 * after the frame saying it completed), so a state never replaces a later one. Every
 * claim and every requeue raises the epoch; a terminal state is final.
 */
function progress(r) {
  return TERMINAL.has(r.status)
    ? Number.POSITIVE_INFINITY
    : r.epoch * 2 + (r.status === 'running' ? 1 : 0);
}

function remember(request, at) {
  const known = state.feed.get(request.id);
  if (known && progress(known.request) >= progress(request)) return;
  state.feed.set(request.id, { request, at: Math.max(at, known?.at ?? 0) });
  if (state.feed.size > FEED_LIMIT) {
    const oldest = [...state.feed.values()].sort((a, b) => a.at - b.at)[0];
    state.feed.delete(oldest.request.id);
    state.openOutputs.delete(oldest.request.id);
    if (oldest.request.id !== state.sentId) dropOutput(oldest.request.id);
  }
}

// ---------------------------------------------------------------- output

/**
 * Follows a request's output once: `lines` keeps it all (a view opened later starts from
 * it), `pending` what the views have not shown yet (appended once per tick, however many
 * chunks came).
 */
function followOutput(runtime, id) {
  const known = state.outputs.get(id);
  if (known || !state.client) return known;
  const out = {
    id,
    lines: [],
    pending: '',
    count: 0,
    epoch: null,
    state: 'live',
    error: null,
    views: new Set(),
    flushQueued: false,
    stop: () => {},
  };
  state.outputs.set(id, out);
  out.stop = state.client.onOutput(runtime, id, (chunk) => onChunk(out, chunk), {
    onEnd: (error) => {
      out.state = error ? 'error' : 'done';
      out.error = error ?? null;
      flushSoon(out);
    },
  });
  return out;
}

function dropOutput(id) {
  const out = state.outputs.get(id);
  if (!out) return;
  out.stop();
  state.outputs.delete(id);
}

function chunkLine(data) {
  return `${typeof data === 'string' ? data : JSON.stringify(data)}\n`;
}

function onChunk(out, chunk) {
  let text = '';
  // A redelivered request starts over: its next attempt's chunks carry a new epoch.
  if (out.epoch !== null && chunk.epoch !== out.epoch) text += `── attempt ${chunk.epoch} ──\n`;
  out.epoch = chunk.epoch;
  text += chunkLine(chunk.data);
  out.lines.push(text);
  out.pending += text;
  out.count += 1;
  flushSoon(out);
}

function flushSoon(out) {
  if (out.flushQueued) return;
  out.flushQueued = true;
  setTimeout(() => {
    out.flushQueued = false;
    const text = out.pending;
    out.pending = '';
    for (const view of out.views) showOutput(view, out, text);
  }, 0);
}

/** A view of an output: a `pre` the chunks are appended to, and a line about it. */
function outputView(testid) {
  const meta = el('span', { class: 'output-meta muted', 'data-testid': `${testid}-meta` });
  const pre = el('pre', { class: 'output', 'data-testid': testid });
  return { node: el('div', { class: 'output-view' }, meta, pre), meta, pre, out: null };
}

/** Shows `out` in `view` from the start (or nothing, for null). */
function attachOutput(view, shown) {
  const out = shown ?? null;
  if (view.out === out) return;
  view.out?.views.delete(view);
  view.out = out;
  view.pre.textContent = '';
  if (out) {
    out.views.add(view);
    showOutput(view, out, out.lines.join('') + out.pending);
  } else {
    showOutput(view, { count: 0, state: 'live', error: null, id: '' }, '');
  }
}

function showOutput(view, out, text) {
  const { pre } = view;
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  if (text) pre.append(text);
  if (atEnd) pre.scrollTop = pre.scrollHeight;
  pre.dataset.id = out.id;
  pre.dataset.count = String(out.count);
  pre.dataset.state = out.state;
  pre.hidden = out.count === 0;
  const chunks = out.count === 1 ? '1 chunk' : `${out.count} chunks`;
  view.meta.textContent =
    out.state === 'error'
      ? `output: ${chunks}, stopped: ${out.error?.code ?? 'error'}`
      : out.state === 'done'
        ? out.count === 0
          ? 'no output'
          : `output: ${chunks}`
        : out.count === 0
          ? 'no output yet'
          : `output: ${chunks}, streaming…`;
  view.node.dataset.state = out.state;
}

/** The feed's view of each request's output, kept across renders (its text stays). */
const feedViews = new Map();

function feedOutputView(id) {
  let view = feedViews.get(id);
  if (!view) {
    view = outputView('output');
    feedViews.set(id, view);
  }
  return view;
}

function pruneFeedViews() {
  for (const [id, view] of feedViews) {
    if (state.feed.has(id)) continue;
    attachOutput(view, null);
    feedViews.delete(id);
  }
}

// ---------------------------------------------------------------- send form

/** The request the result panel shows. */
let shown = null;
/** The output of the request the result panel shows. */
const sentView = outputView('send-result-output');

function onSend(e) {
  e.preventDefault();
  const runtime = $('send-runtime').value.trim();
  const kind = $('send-kind').value.trim();
  const text = $('send-payload').value.trim();
  $('send-error').textContent = '';
  let payload;
  if (text !== '') {
    try {
      payload = JSON.parse(text);
    } catch (err) {
      $('send-error').textContent = `Payload is not JSON: ${err.message}`;
      $('send-payload').focus();
      return;
    }
  }
  quietly(sendAndWait(runtime, kind, payload));
}

async function sendAndWait(runtime, kind, payload) {
  const client = state.client;
  const button = document.querySelector('[data-testid="send-submit"]');
  button.disabled = true;
  try {
    watch(runtime);
    if (!state.runtimes.get(runtime)?.last_seen_at) quietly(refreshRuntimes());
    const request = await client.send(runtime, kind, payload);
    state.sentId = request.id;
    remember(request, Date.now());
    // Its frames can come before this answer (running already): show the furthest state.
    showSent(state.feed.get(request.id)?.request ?? request);
    attachOutput(sentView, followOutput(runtime, request.id));
    scheduleRender();
    button.disabled = false;
    const done = await client.result(runtime, request.id);
    if (state.sentId === done.id) showSent(done);
  } catch (err) {
    if (err?.code === 'closed') return;
    $('send-error').textContent = `${err?.code ?? 'error'}: ${err?.message ?? err}`;
  } finally {
    button.disabled = false;
  }
}

function showSent(request) {
  if (shown?.id === request.id && progress(shown) >= progress(request)) return;
  shown = request;
  $('send-result').hidden = false;
  $('send-result').dataset.id = request.id;
  $('send-result').dataset.status = request.status;
  const status = $('send-result-status');
  status.textContent = request.status;
  status.className = `badge status-${request.status}`;
  status.dataset.status = request.status;
  $('send-result-id').textContent = request.id;
  const body = $('send-result-body');
  if (request.status === 'completed') body.textContent = pretty(request.result);
  else if (request.error) body.textContent = `${request.error.code}: ${request.error.message}`;
  else body.textContent = request.status === 'running' ? 'running…' : 'waiting for the daemon…';
}

function pretty(value) {
  return JSON.stringify(value, null, 2) ?? 'null';
}

// ---------------------------------------------------------------- rendering

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) node.setAttribute(k, String(v));
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  setTimeout(() => {
    state.renderQueued = false;
    render();
  }, 0);
}

function render() {
  renderRuntimes();
  renderFeed();
  pruneFeedViews();
}

function renderRuntimes() {
  const list = [...state.runtimes.values()].sort(
    (a, b) => Number(b.online) - Number(a.online) || a.id.localeCompare(b.id),
  );
  $('runtimes').replaceChildren(...list.map(runtimeCard));
  $('runtimes-empty').hidden = list.length > 0;
  $('runtime-names').replaceChildren(...list.map((r) => el('option', { value: r.id })));
  explorer.setRuntimes(list.map((r) => r.id).sort());
  const input = $('send-runtime');
  if (!input.value && list[0]) input.value = list[0].id;
}

function runtimeCard(r) {
  const presence = r.online ? 'online' : 'offline';
  const conns = r.connections.length
    ? el(
        'table',
        { class: 'conns' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            el('th', { scope: 'col', textContent: 'node' }),
            el('th', { scope: 'col', textContent: 'capacity' }),
            el('th', { scope: 'col', textContent: 'in flight' }),
            el('th', { scope: 'col', textContent: 'connected' }),
          ),
        ),
        el(
          'tbody',
          {},
          ...r.connections.map((c) =>
            el(
              'tr',
              { 'data-testid': 'connection-row' },
              el('td', { textContent: c.node_id }),
              el('td', { class: 'num', textContent: String(c.capacity) }),
              el('td', { class: 'num', textContent: String(c.in_flight) }),
              el('td', { textContent: time(c.connected_at), title: c.connected_at }),
            ),
          ),
        ),
      )
    : el('p', { class: 'muted small', textContent: r.online ? 'polling over HTTP' : 'no daemon' });
  return el(
    'li',
    {
      class: `runtime ${presence}`,
      'data-testid': 'runtime',
      'data-runtime': r.id,
      'data-online': String(r.online),
    },
    el(
      'div',
      { class: 'runtime-head' },
      el('span', { class: 'dot', 'aria-hidden': 'true' }),
      el('button', {
        type: 'button',
        class: 'runtime-name link',
        textContent: r.id,
        title: 'send to this runtime',
        onclick: () => {
          $('send-runtime').value = r.id;
          $('send-kind').focus();
        },
      }),
      el('span', {
        class: `badge ${presence}`,
        'data-testid': 'runtime-state',
        textContent: presence,
      }),
    ),
    el(
      'div',
      { class: 'counts' },
      el('span', {}, 'pending ', el('b', { 'data-testid': 'pending', textContent: r.pending })),
      el('span', {}, 'running ', el('b', { 'data-testid': 'running', textContent: r.running })),
      r.last_seen_at
        ? el('span', { class: 'muted', title: r.last_seen_at }, `seen ${time(r.last_seen_at)}`)
        : null,
    ),
    conns,
  );
}

function renderFeed() {
  const items = [...state.feed.values()].sort(
    (a, b) => b.at - a.at || b.request.id.localeCompare(a.request.id),
  );
  $('feed').replaceChildren(...items.map(({ request }) => feedItem(request)));
  $('feed-empty').hidden = items.length > 0;
  $('feed-count').textContent = items.length ? `${items.length} shown` : '';
}

function feedItem(r) {
  const live = r.status === 'pending' || r.status === 'running';
  const outcome =
    r.status === 'completed'
      ? pretty(r.result)
      : r.error
        ? `${r.error.code}: ${r.error.message}`
        : null;
  return el(
    'li',
    { class: 'req', 'data-testid': 'feed-item', 'data-id': r.id, 'data-status': r.status },
    el(
      'div',
      { class: 'req-head' },
      el('span', { class: `badge status-${r.status}`, textContent: r.status }),
      el('span', { class: 'kind', textContent: r.kind }),
      el('span', { class: 'muted', textContent: '→' }),
      el('span', { class: 'rt', textContent: r.runtime_id }),
      el('time', {
        class: 'muted',
        dateTime: r.finished_at ?? r.claimed_at ?? r.created_at,
        textContent: time(r.finished_at ?? r.claimed_at ?? r.created_at),
      }),
      live
        ? el('button', {
            type: 'button',
            class: 'link cancel',
            textContent: 'cancel',
            'aria-label': `cancel request ${r.id}`,
            onclick: () => quietly(state.client.cancel(r.runtime_id, r.id)),
          })
        : null,
    ),
    el(
      'div',
      { class: 'req-meta muted' },
      el('code', { class: 'id', textContent: r.id }),
      r.attempt > 1 ? ` · attempt ${r.attempt}/${r.max_attempts}` : '',
      r.priority ? ` · priority ${r.priority}` : '',
    ),
    el(
      'details',
      {},
      el('summary', { textContent: outcome === null ? 'payload' : 'payload and result' }),
      el('pre', { textContent: pretty(r.payload) }),
      outcome === null ? null : el('pre', { class: 'outcome', textContent: outcome }),
    ),
    outputDetails(r),
  );
}

/** "output": opened, it follows the request's output (kept open across renders). */
function outputDetails(r) {
  const open = state.openOutputs.has(r.id);
  const details = el(
    'details',
    { class: 'output-details', 'data-testid': 'output-details', open },
    el('summary', { textContent: 'output' }),
  );
  if (open) {
    const view = feedOutputView(r.id);
    attachOutput(view, followOutput(r.runtime_id, r.id));
    details.append(view.node);
  }
  details.addEventListener('toggle', () => {
    if (details.open === state.openOutputs.has(r.id)) return;
    if (details.open) state.openOutputs.add(r.id);
    else state.openOutputs.delete(r.id);
    scheduleRender();
  });
  return details;
}

function time(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
}

// ---------------------------------------------------------------- explorer

/** The detail's output view: one, re-pointed at whichever request the detail shows. */
const detailView = outputView('detail-output');

const explorer = createExplorer($('explorer'), {
  api,
  el,
  pretty,
  time,
  runtimes: () => [...state.runtimes.keys()].sort(),
  output(runtime, id) {
    attachOutput(detailView, followOutput(runtime, id));
    return detailView.node;
  },
  onRetried(request) {
    watch(request.runtime_id);
    remember(request, Date.now());
    scheduleRender();
  },
});

// ---------------------------------------------------------------- wiring

$('send-result').append(sentView.node);
$('send-form').addEventListener('submit', onSend);
$('refresh-runtimes').addEventListener('click', () => quietly(refreshRuntimes()));
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.client) quietly(refreshRuntimes());
});
start();
