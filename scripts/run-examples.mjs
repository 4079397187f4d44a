#!/usr/bin/env node
// Runs every examples/*.ts with tsx (each bounded in time) and fails if any exits non-zero.
// Examples are type-checked by `npm run typecheck` (tsconfig includes examples/).
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
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
let failed = 0;
for (const file of files) {
  const started = Date.now();
  const result = spawnSync(process.execPath, [tsx, join('examples', file)], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, MOCRA_EXAMPLE_SMOKE: '1' },
  });
  const ms = Date.now() - started;
  if (result.status === 0) {
    console.log(`ok   ${file} (${ms} ms)`);
  } else {
    failed++;
    console.log(`FAIL ${file} (${ms} ms, exit ${result.status ?? result.signal})`);
    console.log(result.stdout.split('\n').slice(-20).join('\n'));
    console.log(result.stderr.split('\n').slice(-40).join('\n'));
  }
}
console.log(`examples: ${files.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
