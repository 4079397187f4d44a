/**
 * `npm run bench`: runs every bench/<name>/index.ts in its own process (with --expose-gc), then
 * writes docs/benchmarks.md and one SVG chart per case from bench/results/*.json (a note that is
 * a record of rows becomes a table; bench/<name>/write-up.md, when there is one, follows the
 * notes of its benchmark).
 * `npm run bench -- --report-only` rewrites the report from existing results.
 * `npm run bench -- scheduler cache` runs only those benchmarks.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaseResult } from './lib/harness.js';
import { fmt } from './lib/harness.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = join(benchDir, '..');
const resultsDir = join(benchDir, 'results');
const args = process.argv.slice(2);
const reportOnly = args.includes('--report-only');
const only = args.filter((a) => !a.startsWith('--'));

const benches = readdirSync(benchDir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(benchDir, d.name, 'index.ts')))
  .map((d) => d.name)
  .filter((name) => only.length === 0 || only.includes(name))
  .sort();

if (!reportOnly) {
  for (const name of benches) {
    console.log(`\n### bench/${name}`);
    const result = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', join('bench', name, 'index.ts')],
      {
        cwd: root,
        stdio: 'inherit',
        timeout: 15 * 60_000,
      },
    );
    if (result.status !== 0) {
      console.error(`bench/${name} failed (exit ${result.status ?? result.signal})`);
      process.exitCode = 1;
    }
  }
}

interface ResultFile {
  name: string;
  date: string;
  machine: Record<string, string | number>;
  cases: CaseResult[];
  notes: Record<string, unknown>;
}

const files: ResultFile[] = existsSync(resultsDir)
  ? readdirSync(resultsDir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as ResultFile)
  : [];

const chartDir = join(root, 'docs', 'benchmarks');
mkdirSync(chartDir, { recursive: true });

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

function escapeXml(text: string): string {
  return text.replace(
    /[<>&"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!,
  );
}

/** A horizontal bar chart of the medians of one case. */
function svgChart(result: CaseResult): string {
  const rowH = 28;
  const labelW = 230;
  const barW = 420;
  const width = labelW + barW + 140;
  const height = 40 + result.rows.length * rowH + 10;
  const max = Math.max(...result.rows.map((r) => r.median));
  const bars = result.rows
    .map((r, i) => {
      const y = 40 + i * rowH;
      const w = max > 0 ? Math.max(1, (r.median / max) * barW) : 1;
      const colour = r.name.startsWith('mocra') ? '#2f6fdf' : '#9aa4b2';
      return (
        `<text x="${labelW - 8}" y="${y + 17}" text-anchor="end">${escapeXml(r.name)}</text>` +
        `<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${colour}"/>` +
        `<text x="${labelW + w + 6}" y="${y + 17}">${escapeXml(fmt(r.median))}</text>`
      );
    })
    .join('\n  ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">
  <rect width="100%" height="100%" fill="white"/>
  <text x="10" y="22" font-weight="bold">${escapeXml(result.case)} (${escapeXml(result.unit)}, median; higher is better)</text>
  ${bars}
</svg>
`;
}

type Row = Record<string, unknown>;

/** A note whose value is a record of rows (each a record of numbers or strings): a table. */
function isTable(value: unknown): value is Record<string, Row> {
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
  const numeric = columns.map((c) => Object.values(rows).every((r) => typeof r[c] !== 'string'));
  const head = `| | ${columns.map(cell).join(' | ')} |`;
  const rule = `| --- | ${numeric.map((n) => (n ? '---:' : '---')).join(' | ')} |`;
  const body = Object.entries(rows).map(
    ([name, r]) => `| ${cell(name)} | ${columns.map((c) => cell(r[c])).join(' | ')} |`,
  );
  return [head, rule, ...body].join('\n');
}

/** Notes as a list; a note that is a table (a record of rows) as a markdown table of its own. */
function notesMarkdown(notes: Record<string, unknown>): string {
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

let md = `# Benchmarks

Generated by \`npm run bench\` (bench/run-all.ts) from bench/results/*.json. Every benchmark runs
mocra and its peers side by side in one process, in interleaved rounds, and reports the median
of the rounds and the ratio against the first row. Numbers depend on the machine; ratios
travel better than absolute figures. Re-run locally with \`npm run bench\`.

`;
if (files.length === 0) md += 'No results yet: run `npm run bench`.\n';
for (const file of files) {
  md += `## ${file.name}\n\nRun ${file.date} on ${Object.entries(file.machine)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}.\n\n`;
  for (const c of file.cases) {
    const base = c.rows[0]!;
    md += `### ${c.case}\n\n| contender | median ${c.unit} | min | max | ratio vs ${base.name} |\n| --- | ---: | ---: | ---: | ---: |\n`;
    for (const r of c.rows) {
      md += `| ${r.name} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${(r.median / base.median).toFixed(2)}× |\n`;
    }
    const chart = `${slug(file.name)}-${slug(c.case)}.svg`;
    writeFileSync(join(chartDir, chart), svgChart(c));
    md += `\n![${c.case}](benchmarks/${chart})\n\n`;
  }
  if (Object.keys(file.notes).length > 0) md += `Notes:\n\n${notesMarkdown(file.notes)}`;
  const writeUp = join(benchDir, file.name, 'write-up.md');
  if (existsSync(writeUp)) md += `${readFileSync(writeUp, 'utf8').trim()}\n\n`;
}
writeFileSync(join(root, 'docs', 'benchmarks.md'), md);
console.log(`\nwrote docs/benchmarks.md (${files.length} benchmark files)`);
