#!/usr/bin/env node
// Packs the package, installs the tarball into throw-away ESM and CommonJS projects, imports it
// from both, type-checks a TypeScript consumer under NodeNext resolution, and checks that the
// ESM and CJS builds export the same names and recognise each other's errors.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'mocra-smoke-'));
const run = (cmd, args, cwd) => {
  try {
    return execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    console.error(`${cmd} ${args.join(' ')} failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    throw error;
  }
};
// TypeScript consumers on Node have @types/node (ioredis' declarations need it too)
const typesNode = `@types/node@${process.versions.node.split('.')[0]}`;

try {
  run('npm', ['pack', '--pack-destination', work, '--silent'], root);
  const tarball = join(
    work,
    readdirSync(work).find((f) => f.endsWith('.tgz')),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

  // ESM consumer
  const esm = join(work, 'esm');
  mkdirSync(esm);
  writeFileSync(
    join(esm, 'package.json'),
    JSON.stringify({ name: 'smoke-esm', private: true, type: 'module' }),
  );
  run('npm', ['install', '--no-audit', '--no-fund', '--silent', tarball, typesNode], esm);
  writeFileSync(
    join(esm, 'index.mjs'),
    `import * as esm from 'mocra';
import { createRequire } from 'node:module';
const cjs = createRequire(import.meta.url)('mocra');
const names = (m) => Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort().join(',');
if (names(esm) !== names(cjs)) throw new Error('ESM and CJS export different names:\\n' + names(esm) + '\\n' + names(cjs));
for (const name of ['MocraError', 'ConfigError', 'QueueFullError', 'TaskCancelledError', 'TaskTimeoutError',
  'SchedulerClosedError', 'BackendUnavailableError', 'ScriptError', 'isMocraError', 'ErrorCode']) {
  if (!(name in esm)) throw new Error('missing export ' + name);
}
const fromCjs = new cjs.QueueFullError();
if (!esm.isMocraError(fromCjs, 'QUEUE_FULL')) throw new Error('ESM guard does not recognise a CJS error');
if (!cjs.isMocraError(new esm.ConfigError('x'), 'CONFIG_INVALID')) throw new Error('CJS guard does not recognise an ESM error');
const scheduler = esm.createScheduler({ maxConcurrent: 2 });
if ((await scheduler.run(() => 21 * 2)) !== 42) throw new Error('scheduler did not run a task');
const store = await esm.createCacheService({ keyPrefix: 'smoke:' });
await store.set('k', 'v');
if ((await store.get('k')) !== 'v' || store.mode !== 'single_node') throw new Error('store round trip failed');
await store.close();
const testing = await import('mocra/testing');
if (typeof testing.runCacheServiceConformance !== 'function') throw new Error('mocra/testing is missing');
if (typeof createRequire(import.meta.url)('mocra/testing').runCacheServiceConformance !== 'function') {
  throw new Error('mocra/testing (CJS) is missing');
}
console.log('esm ok: ' + Object.keys(esm).length + ' exports');
`,
  );
  console.log(run('node', ['index.mjs'], esm).trim());

  writeFileSync(
    join(esm, 'check.ts'),
    `import { ConfigError, isMocraError, createScheduler, createCacheService, type ErrorCode, type TaskScheduler, type CacheService } from 'mocra';
const code: ErrorCode = new ConfigError('x').code;
const ok: boolean = isMocraError(new Error(), code);
const scheduler: TaskScheduler = createScheduler({ maxConcurrent: 2 });
const n: Promise<number> = scheduler.run(({ signal }) => (signal.aborted ? 0 : 1), { priority: 'high' });
const service: Promise<CacheService> = createCacheService();
export { ok, n, service };
`,
  );
  writeFileSync(
    join(esm, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      files: ['check.ts'],
    }),
  );
  run('node', [tsc, '-p', '.'], esm);
  console.log('esm types ok');

  // CommonJS consumer
  const cjsDir = join(work, 'cjs');
  mkdirSync(cjsDir);
  writeFileSync(
    join(cjsDir, 'package.json'),
    JSON.stringify({ name: 'smoke-cjs', private: true, type: 'commonjs' }),
  );
  run('npm', ['install', '--no-audit', '--no-fund', '--silent', tarball, typesNode], cjsDir);
  writeFileSync(
    join(cjsDir, 'index.cjs'),
    `const mocra = require('mocra');
const err = new mocra.ConfigError('x');
if (err.code !== 'CONFIG_INVALID' || !(err instanceof mocra.MocraError)) throw new Error('bad error class');
console.log('cjs ok: ' + Object.keys(mocra).length + ' exports');
`,
  );
  console.log(run('node', ['index.cjs'], cjsDir).trim());
  writeFileSync(
    join(cjsDir, 'check.cts'),
    `import mocra = require('mocra');
const e: mocra.MocraError = new mocra.QueueFullError();
export = e.code;
`,
  );
  writeFileSync(
    join(cjsDir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        types: ['node'],
      },
      files: ['check.cts'],
    }),
  );
  run('node', [tsc, '-p', '.'], cjsDir);
  console.log('cjs types ok');
} finally {
  rmSync(work, { recursive: true, force: true });
}
