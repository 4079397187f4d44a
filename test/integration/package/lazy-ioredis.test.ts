/**
 * A program that uses only the scheduler does not load ioredis; a Redis backend loads it on
 * construction, from the ESM and the CommonJS build alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, type BuiltPackage } from '../../helpers/built-package.js';

let pkg: BuiltPackage;
beforeAll(() => {
  pkg = buildPackage();
});
afterAll(() => pkg?.remove());

/** Prints how many ioredis files the CommonJS loader holds (ESM imports of it land there too). */
const countIoredis = `const ioredisFiles = () =>
  Object.keys(require.cache).filter((k) => k.includes('/node_modules/ioredis/')).length;`;

const formats = [
  {
    ext: 'mjs',
    prelude: `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const mocra = await import('./index.js');`,
  },
  { ext: 'cjs', prelude: "const mocra = require('./index.cjs');" },
] as const;

describe.each(formats)('the $ext build', ({ ext, prelude }) => {
  it('loads no ioredis for the scheduler and the in-process store, then loads it for a Redis backend', async () => {
    const r = await pkg.run(
      `lazy-ioredis.${ext}`,
      `${prelude}
${countIoredis}
const scheduler = mocra.createScheduler();
await scheduler.submit(async () => 1).result;
const store = await mocra.createCacheService();
await store.set('k', 'v');
console.log('scheduler and local store:', ioredisFiles());
const backend = new mocra.RedisBackend({ redis: 'redis://127.0.0.1:1' });
console.log('redis backend:', ioredisFiles() > 0, backend.client instanceof require('ioredis').Redis);
await backend.close();
await store.close();
await scheduler.shutdown();`.replace(/^/, ext === 'cjs' ? '(async () => {\n' : '') +
        (ext === 'cjs' ? '\n})();' : ''),
    );
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 0,
      stdout: 'scheduler and local store: 0\nredis backend: true true\n',
      stderr: '',
    });
  });
});
