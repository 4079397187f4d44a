/**
 * RetryPolicy with a cockatiel circuit breaker, against a local server that fails its first
 * requests (503, then 429 with Retry-After), then recovers; and a second upstream that is down
 * for good, where the breaker opens and the retries stop.
 *
 *   npx tsx examples/retry.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import { RetryPolicy, isMocraError } from 'mocra';

let flakyHits = 0;
const server = createServer((req, res) => {
  if (req.url === '/down') {
    res.writeHead(503).end();
    return;
  }
  flakyHits++;
  if (flakyHits === 1) res.writeHead(503).end();
  else if (flakyHits === 2) res.writeHead(429, { 'retry-after': '1' }).end();
  else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** fetch that throws HTTP-like errors the default classifier understands (status, retryAfterMs). */
async function getJson(path: string, signal: AbortSignal): Promise<unknown> {
  const res = await fetch(base + path, { signal });
  if (!res.ok) {
    const retryAfter = Number(res.headers.get('retry-after'));
    throw Object.assign(new Error(`HTTP ${res.status}`), {
      status: res.status,
      ...(retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
    });
  }
  return res.json();
}

const breaker = circuitBreaker(handleAll, {
  halfOpenAfter: 10_000,
  breaker: new ConsecutiveBreaker(3),
});
const retry = new RetryPolicy({
  maxRetries: 5,
  initialDelayMs: 100,
  maxDelayMs: 2_000,
  policy: breaker,
});
retry.on('retry', (e) =>
  console.log(
    `  attempt ${e.attempt} failed (${(e.error as Error).message}); retrying in ${e.delayMs} ms`,
  ),
);

console.log('flaky upstream:');
console.log('  →', await retry.execute(({ signal }) => getJson('/flaky', signal)));

console.log('upstream that stays down (breaker opens after 3 failures):');
try {
  await retry.execute(({ signal }) => getJson('/down', signal));
} catch (error) {
  console.log(
    '  gave up with',
    isMocraError(error) ? error.code : (error as Error).constructor.name,
  );
}
console.log('stats:', retry.stats());
server.close();
