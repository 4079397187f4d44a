import { describe, expect, it } from 'vitest';
import {
  InMemoryMetrics,
  noopMetrics,
  prometheusMetrics,
  type PromClientLike,
} from '../../../src/observe/metrics.js';

describe('metrics', () => {
  it('InMemoryMetrics counts per label set regardless of label order', () => {
    const m = new InMemoryMetrics();
    m.increment('ptm_claim_total', { result: 'EXECUTE', module: 'a' });
    m.increment('ptm_claim_total', { module: 'a', result: 'EXECUTE' }, 2);
    m.increment('ptm_claim_total', { result: 'DUPLICATE_DONE', module: 'a' });
    expect(m.counter('ptm_claim_total', { result: 'EXECUTE', module: 'a' })).toBe(3);
    expect(m.counterTotal('ptm_claim_total')).toBe(4);
    m.observe('latency_ms', 5);
    m.observe('latency_ms', 1);
    expect(m.histogram('latency_ms')).toEqual({ count: 2, sum: 6, min: 1, max: 5 });
    m.gauge('queue_depth', 7, { queue: 'q' });
    expect(m.gaugeValue('queue_depth', { queue: 'q' })).toBe(7);
    m.reset();
    expect(m.counterTotal('ptm_claim_total')).toBe(0);
    noopMetrics.increment('x');
  });

  it('prometheusMetrics creates each metric once, prefixes names, and never throws', () => {
    const created: string[] = [];
    const incs: [Record<string, string>, number | undefined][] = [];
    class Counter {
      constructor(c: { name: string }) {
        created.push(c.name);
      }
      inc(labels: Record<string, string>, v?: number) {
        if (labels.bad) throw new Error('label mismatch');
        incs.push([labels, v]);
      }
    }
    class Histogram {
      constructor(c: { name: string }) {
        created.push(c.name);
      }
      observe() {}
    }
    class Gauge {
      constructor(c: { name: string }) {
        created.push(c.name);
      }
      set() {}
    }
    const m = prometheusMetrics({ Counter, Histogram, Gauge } as unknown as PromClientLike, {
      prefix: 'app_',
    });
    m.increment('a_total', { r: 'x' });
    m.increment('a_total', { r: 'y' }, 3);
    m.increment('a_total', { bad: '1' });
    m.observe('lat_ms', 3);
    m.gauge('depth', 1);
    // the catalog's metrics are registered up front, the others on first use, each once
    expect(created.slice(-3)).toEqual(['app_a_total', 'app_lat_ms', 'app_depth']);
    expect(created).toContain('app_ptm_claim_total');
    expect(new Set(created).size).toBe(created.length);
    expect(incs).toEqual([
      [{ r: 'x' }, 1],
      [{ r: 'y' }, 3],
    ]);
  });
});
