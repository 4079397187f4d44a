/**
 * DurableBackend.openReadOnly: reads a store without its lock (while its writer holds it), never
 * writes, and never creates anything where there is no mocra store.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isMocraError } from '../../../src/errors.js';
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';
import { removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';

afterAll(removeTempDataDirs);

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (error) {
    if (isMocraError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('DurableBackend.openReadOnly', () => {
  it('reads what the writer committed while the writer holds the lock; writes are refused', async () => {
    const path = tempDataDir();
    const writer = await DurableBackend.open({ path, keyPrefix: 'app', sweepIntervalMs: 0 });
    await writer.set('greeting', 'hello');
    await writer.zadd('z', 2, 'b');
    await writer.zadd('z', 1, 'a');
    const lock = readFileSync(join(path, 'mocra.lock'), 'utf8');

    const reader = await DurableBackend.openReadOnly({ path, keyPrefix: 'app' });
    expect(reader.durable).toBe(true);
    expect(await reader.get('greeting')).toBe('hello');
    expect(await reader.zrangeByScore('z', -Infinity, Infinity)).toEqual(['a', 'b']);
    await writer.set('later', 'seen'); // committed after the reader opened
    // lmdb keeps the reader's snapshot until its next timer turn
    await new Promise((resolve) => setTimeout(resolve, 1));
    expect(await reader.get('later')).toBe('seen');
    const refused = await failure(reader.set('greeting', 'bye'));
    expect(refused.code).toBe('CONFIG_INVALID');
    expect(refused.message).toMatch(/read-only/);
    expect(() => reader.store.zadd('app:z', 3, 'c')).toThrow(/read-only/);
    await reader.close();

    // the reader neither took nor dropped the writer's lock; nothing it tried was written
    expect(readFileSync(join(path, 'mocra.lock'), 'utf8')).toBe(lock);
    expect(await writer.get('greeting')).toBe('hello');
    expect(await writer.zrangeByScore('z', -Infinity, Infinity)).toEqual(['a', 'b']);
    await writer.close();
  });

  it('a missing path, an empty directory, a file, non-LMDB and a foreign LMDB file: ConfigError, nothing created', async () => {
    const base = tempDataDir();
    const missing = join(base, 'nope', 'deeper');
    const m = await failure(DurableBackend.openReadOnly({ path: missing, label: '--data-dir' }));
    expect(m).toEqual({
      code: 'CONFIG_INVALID',
      message: `--data-dir ${JSON.stringify(missing)} does not exist`,
    });
    expect(existsSync(join(base, 'nope'))).toBe(false);

    const empty = tempDataDir();
    const e = await failure(DurableBackend.openReadOnly({ path: empty }));
    expect(e.message).toMatch(/holds no mocra store \(no mocra\.mdb in it\)/);
    expect(readdirSync(empty)).toEqual([]);

    const file = join(base, 'plain');
    writeFileSync(file, 'x');
    expect((await failure(DurableBackend.openReadOnly({ path: file }))).message).toMatch(
      /is a file, not a directory/,
    );

    const garbage = tempDataDir();
    writeFileSync(join(garbage, 'mocra.mdb'), 'not lmdb at all, '.repeat(500));
    expect((await failure(DurableBackend.openReadOnly({ path: garbage }))).message).toMatch(
      /not an LMDB file/,
    );
    expect(readdirSync(garbage)).toEqual(['mocra.mdb']);

    const foreign = tempDataDir();
    const { open } = await import('lmdb');
    const other = open({ path: join(foreign, 'mocra.mdb'), noSubdir: true });
    await other.put('theirs', 1);
    await other.close();
    const before = readFileSync(join(foreign, 'mocra.mdb'));
    expect((await failure(DurableBackend.openReadOnly({ path: foreign }))).message).toMatch(
      /not a mocra store/,
    );
    expect(readFileSync(join(foreign, 'mocra.mdb')).equals(before)).toBe(true);
    expect(existsSync(join(foreign, 'mocra.lock'))).toBe(false);
  });
});
