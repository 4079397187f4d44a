/**
 * The `mocra` command's human output: plain aligned tables, one line per row.
 */
import type { RunStatus } from '../chain/engine/types.js';
import type { DeadLetterView, LeaseView, RetryView } from './source.js';

/** Aligns rows under a header (two spaces between columns). @internal */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const time = (ms: number | undefined): string =>
  ms === undefined || ms === 0 ? '-' : new Date(ms).toISOString();

const progress = (n: RunStatus['nodes']): string[] => [
  String(n.queued),
  String(n.running),
  String(n.done),
  String(n.failed),
];

/** Runs, then a row per module under each. @internal */
export function runsTable(runs: readonly RunStatus[]): string {
  if (runs.length === 0) return 'no runs';
  const rows: string[][] = [];
  for (const r of runs) {
    rows.push([
      r.runId,
      r.taskId,
      r.state,
      ...progress(r.nodes),
      String(r.items),
      String(r.errors),
      time(r.startedAt),
    ]);
    for (const [id, m] of Object.entries(r.modules))
      rows.push([
        `  ${id}`,
        '',
        m.state,
        ...progress(m.nodes),
        String(m.items),
        String(m.errors),
        '',
      ]);
  }
  return table(
    [
      'RUN / MODULE',
      'TASK',
      'STATE',
      'QUEUED',
      'RUNNING',
      'DONE',
      'FAILED',
      'ITEMS',
      'ERRORS',
      'STARTED',
    ],
    rows,
  );
}

/** One run in full. @internal */
export function runDetail(
  run: RunStatus,
  retries: readonly RetryView[],
  leases: readonly LeaseView[],
  deadLetters: readonly DeadLetterView[],
): string {
  const parts = [
    runsTable([run]),
    `updated ${time(run.updatedAt)}, finished ${time(run.finishedAt)}`,
    '',
    `retry queue (${retries.length})`,
  ];
  if (retries.length > 0)
    parts.push(
      table(
        ['MODULE', 'STEP', 'PREFIX', 'ATTEMPT', 'DUE'],
        retries.map((r) => [
          r.moduleId,
          String(r.stepIdx),
          r.prefixRequest,
          String(r.attempt),
          time(r.dueAt),
        ]),
      ),
    );
  parts.push('', `leases held (${leases.length})`);
  if (leases.length > 0)
    parts.push(
      table(
        ['NODE', 'STATUS', 'OWNER', 'VERSION', 'UNTIL'],
        leases.map((l) => [l.nodeId, l.status, l.owner, String(l.version), time(l.until)]),
      ),
    );
  parts.push('', `dead letters (${deadLetters.length})`);
  if (deadLetters.length > 0) parts.push(deadLettersTable(deadLetters));
  return parts.join('\n');
}

/** Dead letters. @internal */
export function deadLettersTable(letters: readonly DeadLetterView[]): string {
  if (letters.length === 0) return 'no dead letters';
  return table(
    ['QUEUE', 'ID', 'KIND', 'RUN', 'DELIVERIES', 'REASON'],
    letters.map((d) => [
      d.queue,
      d.id,
      d.kind ?? '?',
      d.runId ?? '-',
      String(d.deliveries),
      d.reason,
    ]),
  );
}
