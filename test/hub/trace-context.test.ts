/**
 * Trace context with no OpenTelemetry SDK in the process (the hub's spans are no-ops):
 * a client's valid traceparent is kept on the record and reaches the daemon unchanged
 * (socket push and HTTP heartbeat), a malformed one is ignored (the create succeeds,
 * untraced), an untraced create stores no trace field, and results carrying `trace`
 * (socket frame and HTTP body) are taken. Both stores. Plus the W3C parsing rules.
 */
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTrace } from '../../protocol/index.js';
import type { SwitchboardNode } from '../../src/node.js';
import {
  api,
  clientToken,
  daemonToken,
  readyDaemon,
  STORE_BACKENDS,
  startTestNode,
} from '../helpers/node.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('readTrace (W3C trace context)', () => {
  it('takes a valid traceparent and tracestate', () => {
    expect(readTrace(PARENT, 'congo=t61rcWkgMzE')).toEqual({
      traceparent: PARENT,
      tracestate: 'congo=t61rcWkgMzE',
    });
    expect(readTrace(` ${PARENT} `, undefined)).toEqual({ traceparent: PARENT });
    // A later version may append fields: read as version 00.
    expect(readTrace(`01-${TRACE_ID}-00f067aa0ba902b7-01-extra`, undefined)).toEqual({
      traceparent: PARENT,
    });
  });

  it('ignores a malformed traceparent, and a bad tracestate alone', () => {
    for (const bad of [
      undefined,
      '',
      'garbage',
      `00-${TRACE_ID}-00f067aa0ba902b7-1`,
      `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `ff-${TRACE_ID}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-00f067aa0ba902b7-01-extra`,
    ]) {
      expect(readTrace(bad, 'a=b')).toBeUndefined();
    }
    expect(readTrace(PARENT, 'x'.repeat(513))).toEqual({ traceparent: PARENT });
    expect(readTrace(PARENT, 'a=\u00e9')).toEqual({ traceparent: PARENT });
    expect(readTrace(PARENT, '  ')).toEqual({ traceparent: PARENT });
  });
});

describe.each(STORE_BACKENDS)('trace context without an SDK (%s store)', (_name, backend) => {
  let node: SwitchboardNode;
  let stopBackend: () => Promise<void>;
  let client: string;

  beforeAll(async () => {
    const b = await backend();
    stopBackend = b.stop;
    node = await startTestNode(b.env);
    client = await clientToken();
  });
  afterAll(async () => {
    await node?.kill();
    await stopBackend?.();
  });

  const create = (runtime: string, headers: Record<string, string>, body: object = {}) =>
    api(node, 'POST', `/v1/runtimes/${runtime}/requests`, {
      token: client,
      body: { kind: 'k', ...body },
      headers,
    });

  it('has no SDK registered (the spans are no-ops)', () => {
    expect(trace.getTracer('x').startSpan('y').isRecording()).toBe(false);
  });

  it("keeps the client's trace on the record and pushes it to the daemon", async () => {
    const daemon = await readyDaemon(node, await daemonToken('ctx-ws'), 1);
    const created = await create('ctx-ws', { traceparent: PARENT, tracestate: 'a=1' });
    expect(created.status).toBe(201);
    const trace = { traceparent: PARENT, tracestate: 'a=1' };
    expect(created.body.trace).toEqual(trace);
    const pushed = await daemon.next('request');
    expect(pushed.request).toMatchObject({ id: created.body.id, trace });
    // A result carrying the handler's trace is taken.
    daemon.send({
      type: 'result',
      id: created.body.id,
      epoch: pushed.request.epoch,
      status: 'completed',
      result: 1,
      trace: { traceparent: `00-${TRACE_ID}-1111111111111111-01` },
    });
    expect(await daemon.next((f) => f.type === 'ack' || f.type === 'nack')).toMatchObject({
      type: 'ack',
    });
    const got = await api(node, 'GET', `/v1/runtimes/ctx-ws/requests/${created.body.id}`, {
      token: client,
    });
    expect(got.body).toMatchObject({ status: 'completed', trace });
    await daemon.close();
  });

  it('ignores a malformed traceparent; an untraced create stores no trace', async () => {
    const daemon = await readyDaemon(node, await daemonToken('ctx-bad'), 2);
    const bad = await create('ctx-bad', { traceparent: 'not-a-traceparent', tracestate: 'a=1' });
    const none = await create('ctx-bad', {});
    expect([bad.status, none.status]).toEqual([201, 201]);
    expect(bad.body).not.toHaveProperty('trace');
    expect(none.body).not.toHaveProperty('trace');
    const pushed = [await daemon.next('request'), await daemon.next('request')];
    for (const p of pushed) expect(p.request).not.toHaveProperty('trace');
    // Read back from the store: no trace field was written.
    for (const id of [bad.body.id, none.body.id]) {
      const record = await node.store.get({ workspace: 'acme', runtime: 'ctx-bad' }, id);
      expect(record?.trace).toBeNull();
    }
    await daemon.close();
  });

  it('a batch: every item keeps the trace; the heartbeat hands it out; HTTP results take it', async () => {
    const batch = await api(node, 'POST', '/v1/runtimes/ctx-http/requests/batch', {
      token: client,
      body: { requests: [{ kind: 'a' }, { kind: 'b' }] },
      headers: { traceparent: PARENT },
    });
    expect(batch.status).toBe(201);
    expect(batch.body.requests.map((r: { trace?: unknown }) => r.trace)).toEqual([
      { traceparent: PARENT },
      { traceparent: PARENT },
    ]);
    const token = await daemonToken('ctx-http');
    const beat = await api(node, 'POST', '/v1/daemon/heartbeat', { token, body: { max: 2 } });
    expect(beat.status).toBe(200);
    expect(beat.body.requests.map((r: { trace?: unknown }) => r.trace)).toEqual([
      { traceparent: PARENT },
      { traceparent: PARENT },
    ]);
    const [first, second] = beat.body.requests as { id: string; epoch: number }[];
    const ok = await api(node, 'POST', `/v1/daemon/requests/${first?.id}/result`, {
      token,
      body: {
        epoch: first?.epoch,
        status: 'completed',
        trace: { traceparent: `00-${TRACE_ID}-2222222222222222-01`, tracestate: 'a=1' },
      },
    });
    expect(ok.status).toBe(200);
    // A malformed trace on a result is ignored, not refused.
    const junk = await api(node, 'POST', `/v1/daemon/requests/${second?.id}/result`, {
      token,
      body: { epoch: second?.epoch, status: 'completed', trace: { traceparent: 'junk' } },
    });
    expect(junk.status).toBe(200);
  });
});
