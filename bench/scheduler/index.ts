/**
 * bench/scheduler: mocra's TaskScheduler beside p-queue and p-limit, in one process.
 * 100,000 no-op tasks at concurrency 10, with one priority and with 4 random priorities;
 * then the heap retained per queued task (paused queues holding 100,000 tasks).
 *
 *   node --expose-gc --import tsx bench/scheduler/index.ts
 */
import PQueue from 'p-queue';
import pLimit from 'p-limit';
import { createScheduler, type Priority } from '../../src/index.js';
import { compareThroughput, printCase, retainedBytes, writeResults, fmt } from '../lib/harness.js';

const N = Number(process.env.BENCH_TASKS ?? 100_000);
const CONCURRENCY = 10;
const noop = (): undefined => undefined;
const names: Priority[] = ['low', 'normal', 'high', 'critical'];
// one fixed random sequence, shared by every contender
let seed = 12345;
const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const prios = Array.from({ length: N }, () => Math.floor(random() * 4));

async function mocraRound(mixed: boolean): Promise<number> {
  const s = createScheduler({ maxConcurrent: CONCURRENCY, queueCapacity: Infinity });
  if (mixed) for (let i = 0; i < N; i++) void s.run(noop, { priority: names[prios[i]!]! });
  else for (let i = 0; i < N; i++) void s.run(noop);
  await s.onIdle();
  return N;
}

async function pQueueRound(mixed: boolean): Promise<number> {
  const q = new PQueue({ concurrency: CONCURRENCY });
  if (mixed) for (let i = 0; i < N; i++) void q.add(noop, { priority: prios[i]! });
  else for (let i = 0; i < N; i++) void q.add(noop);
  await q.onIdle();
  return N;
}

async function pLimitRound(): Promise<number> {
  const limit = pLimit(CONCURRENCY);
  const all: Promise<unknown>[] = new Array(N);
  for (let i = 0; i < N; i++) all[i] = limit(noop);
  await Promise.all(all);
  return N;
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const same = await compareThroughput(
  `${fmt(N)} no-op tasks, concurrency ${CONCURRENCY}, one priority`,
  [
    { name: 'mocra', round: () => mocraRound(false) },
    { name: 'p-queue', round: () => pQueueRound(false) },
    { name: 'p-limit (no priorities)', round: () => pLimitRound() },
  ],
  { rounds },
);
printCase(same, 'p-queue');
const mixed = await compareThroughput(
  `${fmt(N)} no-op tasks, concurrency ${CONCURRENCY}, 4 random priorities`,
  [
    { name: 'mocra', round: () => mocraRound(true) },
    { name: 'p-queue', round: () => pQueueRound(true) },
  ],
  { rounds },
);
printCase(mixed, 'p-queue');

const held: unknown[] = [];
const mocraBytes = await retainedBytes(N, (n) => {
  const s = createScheduler({ maxConcurrent: CONCURRENCY, queueCapacity: Infinity, paused: true });
  for (let i = 0; i < n; i++) held.push(s.run(noop, { priority: names[prios[i]!]! }));
  return s;
});
held.length = 0;
const pQueueBytes = await retainedBytes(N, (n) => {
  const q = new PQueue({ concurrency: CONCURRENCY, autoStart: false });
  for (let i = 0; i < n; i++) held.push(q.add(noop, { priority: prios[i]! }));
  return q;
});
held.length = 0;
console.log(`\nretained bytes per queued task (caller keeps each result promise):`);
console.log(`  mocra    ${fmt(mocraBytes)}`);
console.log(`  p-queue  ${fmt(pQueueBytes)}`);

const ratio = (c: typeof same, a: string, b: string): number =>
  c.rows.find((r) => r.name === a)!.median / c.rows.find((r) => r.name === b)!.median;
writeResults('scheduler', [same, mixed], {
  'mocra / p-queue, one priority': Number(ratio(same, 'mocra', 'p-queue').toFixed(2)),
  'mocra / p-queue, 4 random priorities': Number(ratio(mixed, 'mocra', 'p-queue').toFixed(2)),
  'retained bytes per queued task, mocra': Math.round(mocraBytes),
  'retained bytes per queued task, p-queue': Math.round(pQueueBytes),
});
