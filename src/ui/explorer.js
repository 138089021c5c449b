/**
 * The dashboard's request explorer: the list API paged through, with filters (runtime,
 * status, kind) and a look-up by id; one request's detail (payload, result or error,
 * attempts and epochs, every timestamp, its output live) with cancel and retry; and the
 * dead-letter view, the failed and timed-out requests with bulk retry.
 *
 * The list API is per runtime and filters by status only. A page here reads one page
 * of each source (a runtime, or a runtime and a status) and merges them newest first;
 * "Next page" reads each source's next page. The kind filter is applied to what the
 * pages hold, reading further pages (up to MAX_FILL_PAGES per source) until a page is
 * full. Rendering is textContent only, like app.js.
 */

const PAGE_SIZE = 25;
/** On the first page, a request the list does not show yet re-reads it after this. */
const RELOAD_DEBOUNCE_MS = 1_000;
const MAX_FILL_PAGES = 8;
const STATUSES = ['pending', 'running', 'completed', 'failed', 'timeout', 'cancelled'];
const DEAD = ['failed', 'timeout'];
const RETRYABLE = new Set(['failed', 'timeout', 'cancelled']);
const LIVE = new Set(['pending', 'running']);
const TIMES = ['created_at', 'claimed_at', 'finished_at', 'pending_deadline', 'lease_expires_at'];

/** How far along a request is: every claim and requeue raises the epoch; terminal is final. */
function progress(r) {
  if (!LIVE.has(r.status)) return Number.POSITIVE_INFINITY;
  return r.epoch * 2 + (r.status === 'running' ? 1 : 0);
}

/**
 * deps: { api(path, init?) -> Promise<json>, el, pretty, time, runtimes() -> string[],
 *         output(runtime, id) -> Node (the request's output view, live), onRetried(request) }
 */
export function createExplorer(root, deps) {
  const { el, pretty } = deps;
  const q = (testid) => root.querySelector(`[data-testid="${testid}"]`);
  const ex = {
    view: 'all',
    /** [{ runtime, status, cursor, done }] */
    sources: [],
    rows: [],
    page: 0,
    selected: new Set(),
    /** original id -> the new request its retry made */
    retried: new Map(),
    detail: null,
    loading: null,
    reloadTimer: null,
  };

  // ------------------------------------------------------------ filters and paging

  function filters() {
    return {
      runtime: q('filter-runtime').value,
      status: q('filter-status').value,
      kind: q('filter-kind').value.trim(),
    };
  }

  function sourcesFor(f) {
    const runtimes = f.runtime ? [f.runtime] : deps.runtimes();
    const statuses = ex.view === 'dead' ? DEAD : [f.status || undefined];
    return runtimes.flatMap((runtime) =>
      statuses.map((status) => ({ runtime, status, cursor: undefined, done: false })),
    );
  }

  async function readPage(src, kind) {
    const found = [];
    for (let i = 0; i < MAX_FILL_PAGES && !src.done && found.length < PAGE_SIZE; i++) {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (src.status) params.set('status', src.status);
      if (src.cursor) params.set('cursor', src.cursor);
      const path = `/v1/runtimes/${encodeURIComponent(src.runtime)}/requests?${params}`;
      const page = await deps.api(path);
      src.cursor = page.next_cursor ?? undefined;
      src.done = page.next_cursor === null;
      for (const r of page.requests) if (!kind || r.kind === kind) found.push(r);
      if (!kind) break;
    }
    return found;
  }

  /** Loads the first page (fresh sources) or the next one. */
  function load(next = false) {
    const run = (async () => {
      const f = filters();
      if (!next) {
        ex.sources = sourcesFor(f);
        ex.page = 0;
      }
      ex.page += 1;
      ex.selected.clear();
      setBusy(true);
      try {
        const pages = await Promise.all(
          ex.sources.filter((s) => !s.done || !next).map((s) => readPage(s, f.kind)),
        );
        if (run !== ex.loading) return;
        ex.rows = pages.flat().sort((a, b) => b.id.localeCompare(a.id));
        q('list-error').textContent = '';
      } catch (err) {
        if (run !== ex.loading) return;
        ex.rows = [];
        q('list-error').textContent = `${err.code ?? 'error'}: ${err.message}`;
      } finally {
        if (run === ex.loading) setBusy(false);
      }
      renderList();
    })();
    ex.loading = run;
    return run;
  }

  function setBusy(busy) {
    root.dataset.loading = String(busy);
  }

  // ------------------------------------------------------------ list

  function renderList() {
    const dead = ex.view === 'dead';
    const more = ex.sources.some((s) => !s.done);
    q('request-rows').replaceChildren(...ex.rows.map((r) => row(r, dead)));
    q('list-empty').hidden = ex.rows.length > 0;
    q('list-empty').textContent = ex.sources.length
      ? dead
        ? 'No failed or timed-out requests.'
        : 'No requests match.'
      : 'No runtimes yet.';
    q('page-next').disabled = !more;
    q('page-first').disabled = ex.page <= 1;
    q('page-info').textContent =
      `page ${ex.page} · ${ex.rows.length} shown${more ? ' · more' : ''}`;
    q('bulk').hidden = !dead;
    q('select-col').hidden = !dead;
    q('select-all').checked = dead && ex.rows.length > 0 && ex.selected.size === ex.rows.length;
    q('retry-selected').disabled = ex.selected.size === 0;
    q('retry-selected').textContent = ex.selected.size
      ? `Retry ${ex.selected.size} selected`
      : 'Retry selected';
  }

  function row(r, dead) {
    const retried = ex.retried.get(r.id);
    const check = dead
      ? el(
          'td',
          {},
          el('input', {
            type: 'checkbox',
            checked: ex.selected.has(r.id),
            'aria-label': `select ${r.id}`,
            'data-testid': 'select-row',
            onchange: (e) => {
              if (e.target.checked) ex.selected.add(r.id);
              else ex.selected.delete(r.id);
              renderList();
            },
          }),
        )
      : null;
    return el(
      'tr',
      {
        class: ex.detail?.id === r.id ? 'selected' : '',
        'data-testid': 'request-row',
        'data-id': r.id,
        'data-status': r.status,
        'data-kind': r.kind,
        'data-runtime': r.runtime_id,
      },
      check,
      el(
        'td',
        {},
        el('button', {
          type: 'button',
          class: 'link id',
          // The tail tells ids apart in a list (their head is the creation time); the
          // detail shows the whole id.
          textContent: `…${r.id.slice(-10)}`,
          title: r.id,
          'aria-label': `show request ${r.id}`,
          'data-testid': 'open-request',
          onclick: () => void showDetail(r.runtime_id, r.id),
        }),
      ),
      el('td', {}, el('span', { class: `badge status-${r.status}`, textContent: r.status })),
      el('td', { textContent: r.kind }),
      el('td', { textContent: r.runtime_id }),
      el('td', { class: 'num', textContent: `${r.attempt}/${r.max_attempts}` }),
      el('td', { textContent: deps.time(r.created_at), title: r.created_at }),
      el(
        'td',
        { class: 'outcome-cell' },
        retried
          ? el('button', {
              type: 'button',
              class: 'link',
              textContent: `retried → ${retried.id.slice(-8)}`,
              'data-testid': 'retried-as',
              'data-new-id': retried.id,
              onclick: () => void showDetail(retried.runtime_id, retried.id),
            })
          : r.error
            ? `${r.error.code}: ${r.error.message}`
            : '',
      ),
    );
  }

  async function retrySelected() {
    const picked = ex.rows.filter((r) => ex.selected.has(r.id));
    const button = q('retry-selected');
    button.disabled = true;
    let ok = 0;
    const failed = [];
    // A few at a time: a bulk retry of hundreds must not open hundreds of requests at once.
    for (let i = 0; i < picked.length; i += 4) {
      await Promise.all(
        picked.slice(i, i + 4).map(async (r) => {
          try {
            const made = await deps.api(
              `/v1/runtimes/${encodeURIComponent(r.runtime_id)}/requests/${r.id}/retry`,
              { method: 'POST' },
            );
            ex.retried.set(r.id, made);
            ex.selected.delete(r.id);
            deps.onRetried(made);
            ok += 1;
          } catch (err) {
            failed.push(`${r.id.slice(-8)} ${err.code ?? 'error'}`);
          }
        }),
      );
    }
    const refused = failed.length ? `; not retried: ${failed.join(', ')}` : '';
    q('bulk-status').textContent = `retried ${ok}${refused}`;
    renderList();
  }

  // ------------------------------------------------------------ detail

  async function showDetail(runtime, id) {
    try {
      const r = await deps.api(`/v1/runtimes/${encodeURIComponent(runtime)}/requests/${id}`);
      renderDetail(r);
      q('lookup-error').textContent = '';
    } catch (err) {
      q('lookup-error').textContent = `${err.code ?? 'error'}: ${err.message}`;
    }
  }

  /** An id without its runtime: asks every known runtime, the first that has it wins. */
  async function lookUp(id) {
    const f = filters();
    const runtimes = f.runtime ? [f.runtime] : deps.runtimes();
    q('lookup-error').textContent = '';
    const found = await Promise.all(
      runtimes.map((rt) =>
        deps
          .api(`/v1/runtimes/${encodeURIComponent(rt)}/requests/${encodeURIComponent(id)}`)
          .catch((err) => (err.status === 404 || err.status === 400 ? null : Promise.reject(err))),
      ),
    ).catch((err) => {
      q('lookup-error').textContent = `${err.code ?? 'error'}: ${err.message}`;
      return [];
    });
    const r = found.find(Boolean);
    if (r) renderDetail(r);
    else if (!q('lookup-error').textContent) {
      q('lookup-error').textContent = `no request ${id} in ${f.runtime || 'any runtime'}`;
    }
  }

  function field(label, value, testid) {
    return [
      el('dt', { textContent: label }),
      el('dd', { textContent: value ?? '—', 'data-testid': testid }),
    ];
  }

  function renderDetail(r) {
    ex.detail = r;
    const box = q('detail');
    box.hidden = false;
    box.dataset.id = r.id;
    box.dataset.status = r.status;
    const actions = el('div', { class: 'detail-actions' });
    if (LIVE.has(r.status)) {
      actions.append(
        el('button', {
          type: 'button',
          textContent: 'Cancel',
          'data-testid': 'detail-cancel',
          onclick: () =>
            deps
              .api(`/v1/runtimes/${encodeURIComponent(r.runtime_id)}/requests/${r.id}/cancel`, {
                method: 'POST',
              })
              .then(renderDetail, showActionError),
        }),
      );
    }
    if (RETRYABLE.has(r.status)) {
      actions.append(
        el('button', {
          type: 'button',
          class: 'primary',
          textContent: 'Retry',
          'data-testid': 'detail-retry',
          onclick: () =>
            deps
              .api(`/v1/runtimes/${encodeURIComponent(r.runtime_id)}/requests/${r.id}/retry`, {
                method: 'POST',
              })
              .then((made) => {
                ex.retried.set(r.id, made);
                deps.onRetried(made);
                renderDetail(made);
                renderList();
              }, showActionError),
        }),
      );
    }
    actions.append(el('span', { class: 'error', 'data-testid': 'detail-error', role: 'alert' }));
    const outcome =
      r.status === 'completed'
        ? ['Result', pretty(r.result), 'detail-result']
        : r.error
          ? ['Error', `${r.error.code}: ${r.error.message}`, 'detail-error-info']
          : null;
    box.replaceChildren(
      el(
        'div',
        { class: 'detail-head' },
        el('span', {
          class: `badge status-${r.status}`,
          textContent: r.status,
          'data-testid': 'detail-status',
        }),
        el('code', { class: 'id', textContent: r.id, 'data-testid': 'detail-id' }),
        el('button', {
          type: 'button',
          class: 'link',
          textContent: 'close',
          onclick: () => {
            ex.detail = null;
            box.hidden = true;
            renderList();
          },
        }),
      ),
      el(
        'dl',
        { class: 'fields' },
        ...field('runtime', r.runtime_id, 'detail-runtime'),
        ...field('kind', r.kind, 'detail-kind'),
        ...field('attempt', `${r.attempt} of ${r.max_attempts}`, 'detail-attempt'),
        ...field('epoch', String(r.epoch), 'detail-epoch'),
        ...field('priority', String(r.priority), 'detail-priority'),
        ...field('created by', r.created_by, 'detail-created-by'),
        ...TIMES.flatMap((t) =>
          field(t.replace(/_/g, ' '), r[t] ? `${deps.time(r[t])} (${r[t]})` : null, `detail-${t}`),
        ),
      ),
      actions,
      el('h3', { textContent: 'Payload' }),
      el('pre', { textContent: pretty(r.payload), 'data-testid': 'detail-payload' }),
      outcome ? el('h3', { textContent: outcome[0] }) : null,
      outcome
        ? el('pre', { class: 'outcome', textContent: outcome[1], 'data-testid': outcome[2] })
        : null,
      el('h3', { textContent: 'Output' }),
      deps.output(r.runtime_id, r.id),
    );
    for (const tr of root.querySelectorAll('[data-testid="request-row"]')) {
      tr.classList.toggle('selected', tr.dataset.id === r.id);
    }
  }

  function showActionError(err) {
    const slot = q('detail-error');
    if (slot) slot.textContent = `${err.code ?? 'error'}: ${err.message}`;
  }

  // ------------------------------------------------------------ wiring

  function setView(view) {
    ex.view = view;
    for (const tab of root.querySelectorAll('[role="tab"]')) {
      tab.setAttribute('aria-selected', String(tab.dataset.view === view));
    }
    root.dataset.view = view;
    q('filter-status').disabled = view === 'dead';
    void load();
  }

  q('filter-status').replaceChildren(
    el('option', { value: '', textContent: 'any status' }),
    ...STATUSES.map((s) => el('option', { value: s, textContent: s })),
  );
  q('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  for (const name of ['filter-runtime', 'filter-status']) {
    q(name).addEventListener('change', () => void load());
  }
  q('lookup').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = q('lookup-id').value.trim();
    if (id) void lookUp(id);
  });
  q('page-next').addEventListener('click', () => void load(true));
  q('page-first').addEventListener('click', () => void load());
  q('select-all').addEventListener('change', (e) => {
    ex.selected = new Set(e.target.checked ? ex.rows.map((r) => r.id) : []);
    renderList();
  });
  q('retry-selected').addEventListener('click', () => void retrySelected());
  for (const tab of root.querySelectorAll('[role="tab"]')) {
    tab.addEventListener('click', () => setView(tab.dataset.view));
  }

  return {
    /** The runtimes known changed: the runtime filter's options follow. */
    setRuntimes(names) {
      const select = q('filter-runtime');
      const current = select.value;
      select.replaceChildren(
        el('option', { value: '', textContent: 'all runtimes' }),
        ...names.map((n) => el('option', { value: n, textContent: n })),
      );
      select.value = names.includes(current) ? current : '';
    },
    /** A request changed (socket event): the detail shown follows it. */
    onRequest(r) {
      // Frames and reads race: a state never replaces a later one (as in app.js).
      if (ex.detail?.id === r.id && progress(r) > progress(ex.detail)) renderDetail(r);
      const i = ex.rows.findIndex((x) => x.id === r.id);
      if (i >= 0 && progress(r) > progress(ex.rows[i])) {
        ex.rows[i] = r;
        renderList();
      } else if (i < 0 && ex.page === 1 && ex.selected.size === 0 && !ex.reloadTimer) {
        // Something new on the first page: re-read it, debounced (a burst is one read).
        ex.reloadTimer = setTimeout(() => {
          ex.reloadTimer = null;
          if (ex.page === 1 && ex.selected.size === 0) void load();
        }, RELOAD_DEBOUNCE_MS);
      }
    },
    load,
  };
}
