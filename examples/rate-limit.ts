/**
 * A rate-limited HTTP client on the scheduler: requests to two upstream "hosts" (a local
 * server on 127.0.0.1) run on a TaskScheduler (8 at a time) whose `rateLimiter` hook is one
 * RateLimiter — at most 40 requests/s in all, 15/s per host with bursts of 5 — and the server
 * checks that it never saw more than that. Tasks waiting for the limiter take no run slot.
 *
 * Run: npx tsx examples/rate-limit.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimiter, createScheduler, isMocraError } from 'mocra';

const smoke = process.env.MOCRA_EXAMPLE_SMOKE === '1';
const REQUESTS_PER_HOST = smoke ? 20 : 60;

// ── a tiny upstream that records when each host's requests arrive ─────────────────────────
const arrivals = new Map<string, number[]>();
const server = createServer((req, res) => {
  const host = String(req.headers['x-upstream'] ?? 'unknown');
  const list = arrivals.get(host) ?? [];
  list.push(performance.now());
  arrivals.set(host, list);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ host, n: list.length }));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

// ── the client ─────────────────────────────────────────────────────────────────────────────
const limiter = new RateLimiter({
  global: { rate: 40, intervalMs: 1000 },
  perKey: { rate: 15, intervalMs: 1000, burst: 5 },
  jitterMs: 10, // spread wake-ups so waiters do not stampede
});

const scheduler = createScheduler({ maxConcurrent: 8, queueCapacity: 1_000, rateLimiter: limiter });

function get(host: string, deadline: AbortSignal): Promise<unknown> {
  // `key` selects the per-host bucket; the task's own signal also aborts on `deadline`
  return scheduler.run(
    async ({ signal }) => {
      const res = await fetch(`http://127.0.0.1:${port}/items`, {
        headers: { 'x-upstream': host },
        signal,
      });
      return res.json();
    },
    { key: host, signal: deadline, timeoutMs: 5_000 },
  );
}

const started = performance.now();
// the whole run is bounded: anything still waiting after 20 s is cancelled
const deadline = AbortSignal.timeout(20_000);
const hosts = ['api.alpha.test', 'api.beta.test'];
const results = await Promise.allSettled(
  hosts.flatMap((host) => Array.from({ length: REQUESTS_PER_HOST }, () => get(host, deadline))),
);
const elapsedMs = performance.now() - started;
server.close();

// ── what happened ──────────────────────────────────────────────────────────────────────────
const failed = results.filter((r) => r.status === 'rejected');
for (const f of failed) {
  const reason = (f as PromiseRejectedResult).reason;
  console.error('request failed:', isMocraError(reason) ? reason.code : reason);
}
console.log(
  `${results.length - failed.length}/${results.length} requests in ${elapsedMs.toFixed(0)} ms`,
);

// The per-host rule: after a burst of 5, at most 15/s. Check every window of arrivals.
let worst = 0;
for (const [host, times] of arrivals) {
  for (let i = 0; i < times.length; i++) {
    let j = i;
    while (j < times.length && times[j]! - times[i]! < 1000) j++;
    worst = Math.max(worst, j - i);
  }
  console.log(`${host}: ${times.length} requests`);
}
console.log(`most requests to one host within any 1 s window: ${worst} (limit 5 + 15)`);
console.log('limiter stats:', limiter.stats());
console.log('scheduler stats:', scheduler.stats());

if (failed.length > 0 || worst > 20) process.exit(1);
