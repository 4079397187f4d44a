/**
 * The notes of a benchmark result as markdown (docs/benchmarks.md): each note a list item, except
 * a note that is a table — a record of rows, each a record of numbers or strings — which becomes a
 * markdown table of its own (one column per key seen in any row, in first-seen order).
 */
import { fmt } from './harness.js';

type Row = Record<string, unknown>;

/** A note whose value is a record of rows (each a record of numbers or strings): a table. */
export function isTable(value: unknown): value is Record<string, Row> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const rows = Object.values(value);
  return (
    rows.length > 0 &&
    rows.every(
      (row) =>
        row !== null &&
        typeof row === 'object' &&
        !Array.isArray(row) &&
        Object.values(row as Row).every((c) => typeof c === 'number' || typeof c === 'string'),
    )
  );
}

function cell(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return Math.abs(value) >= 1000 ? fmt(value) : String(value);
  return String(value).replace(/\|/g, '\\|');
}

function tableMarkdown(rows: Record<string, Row>): string {
  const columns = [...new Set(Object.values(rows).flatMap((r) => Object.keys(r)))];
  const numeric = columns.map((c) =>
    Object.values(rows).every((r) => typeof r[c] !== 'string' || r[c] === ''),
  );
  const head = `| | ${columns.map(cell).join(' | ')} |`;
  const rule = `| --- | ${numeric.map((n) => (n ? '---:' : '---')).join(' | ')} |`;
  const body = Object.entries(rows).map(
    ([name, r]) => `| ${cell(name)} | ${columns.map((c) => cell(r[c])).join(' | ')} |`,
  );
  return [head, rule, ...body].join('\n');
}

/** Notes as a list; a note that is a table (a record of rows) as a markdown table of its own. */
export function notesMarkdown(notes: Record<string, unknown>): string {
  let out = '';
  let list: string[] = [];
  const flush = (): void => {
    if (list.length > 0) out += `${list.join('\n')}\n\n`;
    list = [];
  };
  for (const [k, v] of Object.entries(notes)) {
    if (isTable(v)) {
      flush();
      out += `${k}:\n\n${tableMarkdown(v)}\n\n`;
    } else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) {
      list.push(`- ${k}: ${v.join('; ')}`);
    } else {
      list.push(`- ${k}: ${typeof v === 'number' ? fmt(v) : JSON.stringify(v)}`);
    }
  }
  flush();
  return out;
}
