#!/usr/bin/env node
// Runs every examples/*.ts with tsx (each bounded in time) and fails if any exits non-zero.
// Examples are type-checked by `npm run typecheck` (tsconfig includes examples/).
// Some examples also run with arguments (RUNS_WITH_ARGS): the demo on 2 worker processes, which
// under MOCRA_EXAMPLE_SMOKE=1 uses REDIS_URL or starts a private redis-server, and without either
// says it skipped and passes — except under CI=true, where that fails.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const only = process.argv.slice(2);
const dir = join(root, 'examples');
const files = (existsSync(dir) ? readdirSync(dir) : [])
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .filter((f) => only.length === 0 || only.includes(f))
  .sort();
const RUNS_WITH_ARGS = [{ file: 'demo.ts', args: ['--workers', '2'] }];
const runs = files.flatMap((file) => [
  { file, args: [] },
  ...RUNS_WITH_ARGS.filter((run) => run.file === file),
]);
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
let failed = 0;
for (const { file, args } of runs) {
  const name = [file, ...args].join(' ');
  const started = Date.now();
  const result = spawnSync(process.execPath, [tsx, join('examples', file), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, MOCRA_EXAMPLE_SMOKE: '1' },
  });
  const ms = Date.now() - started;
  if (result.status === 0) {
    const skipped = /^skipped: (.*)$/m.exec(result.stdout);
    console.log(`ok   ${name} (${ms} ms${skipped ? `, skipped: ${skipped[1]}` : ''})`);
  } else {
    failed++;
    console.log(`FAIL ${name} (${ms} ms, exit ${result.status ?? result.signal})`);
    console.log(result.stdout.split('\n').slice(-20).join('\n'));
    console.log(result.stderr.split('\n').slice(-40).join('\n'));
  }
}
console.log(`examples: ${runs.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
