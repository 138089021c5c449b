/**
 * The dashboard's charts: GET /v1/stats drawn with uPlot. Bundled with uPlot and its CSS
 * by src/ui/bundle.ts (served as /ui/charts.js and /ui/charts.css); app.js imports it.
 *
 *   throughput  created and completed (and failed) per second, per minute
 *   latency     create to completed/failed, p50 and p99 (ms)
 *   pending     pending per runtime (the top 10 the API returns), as sampled each minute
 *
 * Each chart is one uPlot, made on first data and fed by setData afterwards; the pending
 * chart is made again when its set of runtimes changes (uPlot's series are fixed). Each
 * chart's element carries what it shows in data- attributes, for tests and for people.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const HEIGHT = 170;
const PALETTE = [
  '#2563eb',
  '#16a34a',
  '#dc2626',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#65a30d',
  '#475569',
  '#ea580c',
];

/** Minute rows as per-second rates; the last (current) minute over its elapsed seconds. */
function rates(stats, field) {
  const now = Date.parse(stats.now);
  return stats.minutes.map((m) => {
    const start = Date.parse(m.t);
    const seconds = Math.min(60, Math.max(1, (now - start) / 1000));
    return Math.round((m[field] / seconds) * 100) / 100;
  });
}

function line(label, stroke, extra = {}) {
  return { label, stroke, width: 2, points: { show: true, size: 4 }, ...extra };
}

/** The y axis from 0 to at least `floor` (a quiet minute is a flat line at the bottom). */
function fromZero(floor) {
  return (_u, _min, max) => [0, Math.max(floor, Math.ceil((max ?? 0) * 1.1))];
}

function baseOptions(width, title, yLabel, series, yFloor) {
  return {
    title,
    width,
    height: HEIGHT,
    scales: { x: { time: true }, y: { range: fromZero(yFloor) } },
    axes: [{}, { label: yLabel, size: 56 }],
    series: [{}, ...series],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
  };
}

/** One chart in `host`: `spec(stats)` gives {key, series, data, attrs}. */
function chart(host, title, yLabel, yFloor, spec) {
  let plot = null;
  let key = '';
  const node = document.createElement('div');
  node.className = 'chart';
  host.append(node);
  return {
    node,
    update(stats) {
      const s = spec(stats);
      const xs = stats.minutes.map((m) => Date.parse(m.t) / 1000);
      const data = [xs, ...s.data];
      const width = Math.max(240, Math.floor(node.clientWidth || host.clientWidth / 3));
      if (!plot || key !== s.key) {
        plot?.destroy();
        plot = new uPlot(baseOptions(width, title, yLabel, s.series, yFloor), data, node);
        key = s.key;
      } else {
        plot.setData(data);
      }
      for (const [k, v] of Object.entries(s.attrs)) node.dataset[k] = String(v);
      node.dataset.points = String(xs.length);
    },
    resize() {
      if (plot) plot.setSize({ width: Math.max(240, node.clientWidth), height: HEIGHT });
    },
  };
}

const sum = (values) => values.reduce((a, b) => a + (b ?? 0), 0);

/**
 * The three charts in `host`. `update(stats)` with a GET /v1/stats answer draws them.
 */
export function statsCharts(host) {
  const throughput = chart(host, 'Requests per second', 'per s', 1, (stats) => ({
    key: 'throughput',
    series: [
      line('created/s', PALETTE[0]),
      line('completed/s', PALETTE[1]),
      line('failed/s', PALETTE[2], { dash: [4, 3] }),
    ],
    data: [rates(stats, 'created'), rates(stats, 'completed'), rates(stats, 'failed')],
    attrs: {
      created: sum(stats.minutes.map((m) => m.created)),
      completed: sum(stats.minutes.map((m) => m.completed)),
    },
  }));
  throughput.node.dataset.testid = 'chart-throughput';
  const latency = chart(host, 'Create to done (p50, p99)', 'ms', 10, (stats) => ({
    key: 'latency',
    series: [line('p50', PALETTE[0]), line('p99', PALETTE[3])],
    data: [stats.minutes.map((m) => m.p50_ms), stats.minutes.map((m) => m.p99_ms)],
    attrs: { measured: stats.minutes.filter((m) => m.p50_ms !== null).length },
  }));
  latency.node.dataset.testid = 'chart-latency';
  const pending = chart(host, 'Pending per runtime', 'pending', 5, (stats) => {
    const names = Object.keys(stats.pending).sort();
    return {
      key: `pending:${names.join('\n')}`,
      series: names.map((n, i) => line(n, PALETTE[i % PALETTE.length], { spanGaps: true })),
      data: names.map((n) => stats.pending[n]),
      attrs: { runtimes: names.length },
    };
  });
  pending.node.dataset.testid = 'chart-pending';
  const all = [throughput, latency, pending];
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const c of all) c.resize();
    }, 100);
  });
  return {
    update(stats) {
      for (const c of all) c.update(stats);
    },
  };
}
