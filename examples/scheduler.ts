/**
 * The task scheduler: priorities, a concurrency bound, a bounded queue, cancellation and
 * timeouts, against a local HTTP server.
 *
 *   npx tsx examples/scheduler.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createScheduler, isMocraError } from 'mocra';

// a local server whose /slow endpoint takes 2 s
const server = createServer((req, res) => {
  const delay = req.url === '/slow' ? 2_000 : 20;
  const timer = setTimeout(() => res.end(`ok ${req.url}`), delay);
  res.on('close', () => clearTimeout(timer));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const scheduler = createScheduler({ maxConcurrent: 3, queueCapacity: 20, defaultTimeoutMs: 1_000 });
scheduler.on('taskSettled', (e) =>
  console.log(`  ${e.id.padEnd(12)} ${e.state.padEnd(10)} ${e.runMs.toFixed(0)} ms`),
);

const fetchText =
  (path: string) =>
  async ({ signal }: { signal: AbortSignal }) => {
    const response = await fetch(base + path, { signal });
    return response.text();
  };

// 1. priorities: critical work overtakes queued normal work
console.log('priorities (3 at a time):');
const pages = Array.from({ length: 6 }, (_, i) =>
  scheduler.run(fetchText(`/page/${i}`), { id: `page-${i}` }),
);
const urgent = scheduler.run(fetchText('/urgent'), { id: 'urgent', priority: 'critical' });
await Promise.all([...pages, urgent]);

// 2. timeouts abort the request through the task's signal
console.log('timeout (default 1 s):');
try {
  await scheduler.run(fetchText('/slow'), { id: 'slow' });
} catch (error) {
  if (isMocraError(error, 'TASK_TIMEOUT')) console.log('  slow request timed out and was aborted');
}

// 3. cancellation with the caller's AbortSignal
console.log('cancellation:');
const controller = new AbortController();
const cancelled = scheduler.submit(fetchText('/slow'), {
  id: 'cancel-me',
  signal: controller.signal,
});
setTimeout(() => controller.abort(), 50);
await cancelled.result.catch((error: unknown) => {
  if (isMocraError(error, 'TASK_CANCELLED')) console.log('  cancelled by its signal');
});

// 4. back-pressure: a full queue refuses instead of growing without bound
console.log('back-pressure:');
const burst = await scheduler.submitMany(
  Array.from({ length: 30 }, (_, i) => fetchText(`/burst/${i}`)),
);
const refused = burst.filter((r) => r.status === 'rejected').length;
console.log(`  ${burst.length - refused} done, ${refused} refused with QUEUE_FULL`);

await scheduler.shutdown();
console.log('stats:', scheduler.stats());
server.close();
