/**
 * Pending work keeps a plain node process alive; idle components hold nothing (issue 17, item
 * 14). Each case is a script run with plain `node` on the bundled package, ESM and CommonJS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, type BuiltPackage } from '../../helpers/built-package.js';

let pkg: BuiltPackage;
beforeAll(() => {
  pkg = buildPackage();
});
afterAll(() => pkg?.remove());

const formats = [
  { ext: 'mjs', load: "import * as mocra from './index.js';" },
  { ext: 'cjs', load: "const mocra = require('./index.cjs');" },
] as const;

/** The script's body runs inside an async function: top-level await is not there in CJS. */
const script = (load: string, body: string): string =>
  `${load}\n(async () => {\n${body}\n})().catch((e) => { console.error(e); process.exit(2); });\n`;

describe.each(formats)('a plain node script ($ext)', ({ ext, load }) => {
  it('awaiting acquire twice at a low rate gets both tokens and exits 0', async () => {
    const r = await pkg.run(
      `acquire-twice.${ext}`,
      script(
        load,
        `const limiter = new mocra.RateLimiter({ global: false, perKey: { rate: 1, intervalMs: 300, burst: 1 } });
await limiter.acquire('k');
console.log('first');
await limiter.acquire('k');
console.log('second', limiter.stats().waits);`,
      ),
    );
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 0,
      stdout: 'first\nsecond 1\n',
      stderr: '',
    });
  });

  it('awaiting a retry backoff runs every attempt and exits 0', async () => {
    const r = await pkg.run(
      `retry-backoff.${ext}`,
      script(
        load,
        `const policy = new mocra.RetryPolicy({ maxRetries: 2, initialDelayMs: 150, jitterKind: 'none' });
let calls = 0;
const value = await policy.execute(() => {
  if (++calls < 3) throw Object.assign(new Error('flaky'), { retryable: true });
  return 'done';
});
console.log(value, calls);`,
      ),
    );
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 0,
      stdout: 'done 3\n',
      stderr: '',
    });
  });

  it('an aborted long wait (limiter and backoff) leaves nothing holding the process', async () => {
    const r = await pkg.run(
      `aborted-waits.${ext}`,
      script(
        load,
        `const limiter = new mocra.RateLimiter({ global: false, perKey: { rate: 1, intervalMs: 600000, burst: 1 } });
await limiter.acquire('k');
const wait = limiter.acquire('k', { signal: AbortSignal.timeout(50) }).catch((e) => e.name);
const policy = new mocra.RetryPolicy({ maxRetries: 1, initialDelayMs: 600000, maxDelayMs: 600000, jitterKind: 'none' });
const retry = policy
  .execute(() => { throw Object.assign(new Error('flaky'), { retryable: true }); }, { signal: AbortSignal.timeout(50) })
  .catch((e) => e.name);
console.log(await wait, await retry, limiter.stats().waiting);`,
      ),
      15_000,
    );
    // without the fix for idle components, the process would wait out the 10-minute timers
    expect({ code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 0,
      signal: null,
      stdout: 'TimeoutError TimeoutError 0\n',
      stderr: '',
    });
  });
});
