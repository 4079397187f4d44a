import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** The code of a file without its comments (docs show `process.env` in examples). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

describe('the library and its environment', () => {
  it('reads no environment variable outside the CLI: every setting is an option', () => {
    const readers = sources(SRC)
      .filter((f) => !relative(SRC, f).startsWith('cli'))
      .filter((f) => /process\.env\b/.test(code(readFileSync(f, 'utf8'))))
      .map((f) => relative(SRC, f));
    expect(readers).toEqual([]);
  });
});
