/**
 * docs/metrics.md is the one table of every metric: it must list exactly the catalog, with the
 * same type, labels and meaning, so a metric added in code without its row (or a row left
 * behind) fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRICS } from '../../../src/observe/metric-names.js';

function rows(): Map<string, string[]> {
  const text = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const table = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`([a-z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (name !== undefined) table.set(name, cells.slice(2, 6));
  }
  return table;
}

describe('docs/metrics.md', () => {
  it('lists every metric of the catalog once, with its type, labels, source and meaning', () => {
    const table = rows();
    expect([...table.keys()].sort()).toEqual(Object.keys(METRICS).sort());
    for (const [name, def] of Object.entries(METRICS)) {
      const labels = def.labels.length ? def.labels.map((l) => `\`${l}\``).join(', ') : '—';
      expect(table.get(name), name).toEqual([def.type, labels, def.source, def.help]);
    }
  });
});
