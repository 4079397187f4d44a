/**
 * bench/lib/notes-markdown.ts: the notes of a benchmark in docs/benchmarks.md — plain notes as a
 * list, a note that is a record of rows as a markdown table (bench/distributed's cost, share and
 * CPU tables).
 */
import { describe, expect, it } from 'vitest';
import { isTable, notesMarkdown } from '../../../bench/lib/notes-markdown.js';

describe('notesMarkdown', () => {
  it('renders a record of rows as a table with every column seen, in first-seen order', () => {
    const md = notesMarkdown({
      'load average': 0.5,
      'share of each master': {
        'mocra, master 1': { 'Redis CPU %': 28, 'commands %': 33 },
        'mocra, master 2': { 'Redis CPU %': 43, 'commands %': 36, note: 'a|b' },
      },
      'after the table': { a: 1 },
    });
    expect(md).toBe(
      [
        '- load average: 0.50',
        '',
        'share of each master:',
        '',
        '| | Redis CPU % | commands % | note |',
        '| --- | ---: | ---: | --- |',
        '| mocra, master 1 | 28 | 33 |  |',
        '| mocra, master 2 | 43 | 36 | a\\|b |',
        '',
        '- after the table: {"a":1}',
        '',
        '',
      ].join('\n'),
    );
  });

  it('keeps a column right-aligned when its only strings are blanks, and groups thousands', () => {
    const md = notesMarkdown({ t: { r1: { n: 12_345, m: '' }, r2: { n: 7, m: 3 } } });
    expect(md).toContain('| --- | ---: | ---: |');
    expect(md).toContain('| r1 | 12,345 |  |');
  });

  it('lists arrays of strings joined, and tells tables from other objects', () => {
    expect(notesMarkdown({ holds: ['master 1: a task', 'master 2: the streams'] })).toBe(
      '- holds: master 1: a task; master 2: the streams\n\n',
    );
    expect(isTable({ r: { a: 1, b: 'x' } })).toBe(true);
    expect(isTable({ a: 1 })).toBe(false);
    expect(isTable({ r: { a: { nested: 1 } } })).toBe(false);
    expect(isTable({})).toBe(false);
    expect(isTable(['x'])).toBe(false);
  });
});
