/**
 * deploy/prometheus-rules.yml is what docs/OPERATIONS.md tells operators to load: it must
 * parse as a Prometheus rules file, and every switchboard_* series an alert reads must be
 * one a node exports (a renamed metric would leave an alert that never fires).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { SwitchboardNode } from '../../src/node.js';
import { api, startTestNode } from '../helpers/node.js';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const file = new URL('../../deploy/prometheus-rules.yml', import.meta.url);
const rules = (
  parse(readFileSync(file, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);

describe('deploy/prometheus-rules.yml', () => {
  let node: SwitchboardNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(() => node?.kill());

  it('has alerts with an expression, a severity and a summary', () => {
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect(rule.alert).toMatch(/^Switchboard\w+$/);
      expect(typeof rule.expr).toBe('string');
      expect(rule.labels?.severity).toMatch(/^(warning|critical)$/);
      expect(rule.annotations?.summary).toBeTruthy();
    }
  });

  it('reads only metrics a node exports', async () => {
    const exported = new Set(
      String((await api(node, 'GET', '/metrics')).body)
        .split('\n')
        .filter((line) => line.startsWith('# TYPE '))
        .map((line) => line.split(' ')[2]),
    );
    const read = new Set(
      rules.flatMap((r) => [...r.expr.matchAll(/switchboard_\w+/g)].map((m) => m[0])),
    );
    expect(read.size).toBeGreaterThan(4);
    for (const name of read) {
      const base = name.replace(/_(bucket|count|sum)$/, '');
      expect(exported, name).toContain(exported.has(name) ? name : base);
    }
  });

  it('is the file docs/OPERATIONS.md names, and names every alert there', () => {
    const doc = readFileSync(new URL('../../docs/OPERATIONS.md', import.meta.url), 'utf8');
    expect(doc).toContain('deploy/prometheus-rules.yml');
    for (const rule of rules) expect(doc).toContain(rule.alert);
  });
});
