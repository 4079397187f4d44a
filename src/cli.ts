#!/usr/bin/env node
/**
 * The `mocra` executable (package `bin`): see src/cli/main.ts and `mocra --help`.
 */
import { main } from './cli/main.js';

void main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}).then((code) => {
  process.exitCode = code;
});
