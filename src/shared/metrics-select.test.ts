/**
 * Goal: `/metrics?name=...` serves only the named metrics (and collects only them), refuses a
 * malformed or overlong list naming the `name` field, and serves everything without a name.
 * Method: a real prom-client registry whose collect() calls are counted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { metricNamesPerRequestMax, metricsSelection, metricsText } from './metrics-select.js';
import { collectProcessMetrics } from './process-metrics.js';

function registryWithCounts(): { registry: client.Registry; collected: Map<string, number> } {
  const registry = new client.Registry();
  const collected = new Map<string, number>();
  for (const name of ['a_gauge', 'b_gauge', 'c_gauge']) {
    new client.Gauge({
      name, help: name, registers: [registry],
      collect() {
        collected.set(name, (collected.get(name) ?? 0) + 1);
        this.set(1);
      },
    });
  }
  return { registry, collected };
}

describe('metricsSelection', () => {
  it('is everything without a name parameter, the named set with one', () => {
    assert.deepEqual(metricsSelection(new URLSearchParams('')), { kind: 'all' });
    assert.deepEqual(metricsSelection(new URLSearchParams('other=1')), { kind: 'all' });
    assert.deepEqual(metricsSelection(new URLSearchParams('name=a&name[]=b&name=a')), { kind: 'names', names: ['a', 'b'] });
  });

  it('refuses a malformed name or too many, naming the field', () => {
    const bad = metricsSelection(new URLSearchParams('name=1abc'));
    assert.equal(bad.kind, 'invalid');
    assert.equal(bad.kind === 'invalid' && bad.field, 'name');
    assert.equal(metricsSelection(new URLSearchParams('name=')).kind, 'invalid');
    assert.equal(metricsSelection(new URLSearchParams(`name=${'x'.repeat(201)}`)).kind, 'invalid');
    const many = new URLSearchParams();
    for (let i = 0; i <= metricNamesPerRequestMax; i++) many.append('name', `m${i}`);
    assert.equal(metricsSelection(many).kind, 'invalid');
  });
});

describe('metricsText', () => {
  it('collects and prints only the named metrics, leaving unknown names out', async () => {
    const { registry, collected } = registryWithCounts();
    const text = await metricsText(registry, { kind: 'names', names: ['b_gauge', 'no_such_metric'] });
    assert.match(text, /^b_gauge 1$/m);
    assert.doesNotMatch(text, /a_gauge|c_gauge|no_such_metric/);
    assert.deepEqual([...collected.keys()], ['b_gauge']);
  });

  it('prints the whole registry for all, and nothing for names it does not have', async () => {
    const { registry, collected } = registryWithCounts();
    const text = await metricsText(registry, { kind: 'all' });
    for (const name of ['a_gauge', 'b_gauge', 'c_gauge']) assert.match(text, new RegExp(`^${name} 1$`, 'm'));
    assert.equal(collected.size, 3);
    assert.equal(await metricsText(registry, { kind: 'names', names: ['zzz'] }), '');
  });
});

describe('a process metric selected alone', () => {
  it('has its value though its family sets it from a sibling\'s collect (heap used, CPU seconds)', async () => {
    // prom-client sets nodejs_heap_size_used_bytes in nodejs_heap_size_total_bytes's collect:
    // asked for alone, it read 0 (found by a bench that read the CP's heap by name).
    const registry = new client.Registry();
    collectProcessMetrics(registry, 't_');
    const value = (text: string, name: string): number => Number(/^(\S+) (\S+)$/m.exec(text.split('\n').filter((l) => l.startsWith(name)).join('\n'))?.[2]);
    const used = await metricsText(registry, { kind: 'names', names: ['t_nodejs_heap_size_used_bytes'] });
    assert.ok(value(used, 't_nodejs_heap_size_used_bytes') > 1e6, used);
    // The CPU counters count from registration: burn 2 ms of this process's CPU first, so the
    // total (set in the user counter's collect) cannot honestly read 0. System time alone can.
    const cpuStart = process.cpuUsage();
    const cpuSpentMicros = (): number => { const now = process.cpuUsage(cpuStart); return now.user + now.system; };
    let sink = 0;
    while (cpuSpentMicros() < 2000) for (let i = 0; i < 10_000; i += 1) sink += Math.sqrt(i);
    assert.ok(sink > 0);
    const cpu = await metricsText(registry, { kind: 'names', names: ['t_process_cpu_seconds_total'] });
    assert.ok(value(cpu, 't_process_cpu_seconds_total') >= 0.002, cpu);
    assert.ok(!used.includes('t_nodejs_heap_size_total_bytes'), 'only the name asked for is served');
  });
});
