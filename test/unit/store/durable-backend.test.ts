import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isMocraError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { createCacheService } from '../../../src/store/create.js';
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';
import { runCacheServiceConformance } from '../../conformance/cache-service.js';
import { openTempDurable, removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';

afterAll(removeTempDataDirs);

runCacheServiceConformance('DurableBackend', async () => {
  const clock = new ManualClock(1_000_000);
  const service = await openTempDurable({ keyPrefix: 'conf:', clock });
  return {
    service,
    elapse: async (ms) => void clock.advance(ms),
    cleanup: () => service.close(),
  };
});

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (error) {
    if (isMocraError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('DurableBackend specifics', () => {
  it('createCacheService({ path }) opens it: single_node and durable', async () => {
    const service = await createCacheService({ path: tempDataDir(), sweepIntervalMs: 0 });
    expect(service.mode).toBe('single_node');
    expect(service.durable).toBe(true);
    expect(service).toBeInstanceOf(DurableBackend);
    await service.close();
  });

  it('refuses `path` together with `redis`', async () => {
    const r = await codeOf(
      createCacheService({ path: tempDataDir(), redis: 'redis://127.0.0.1:1' }),
    );
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain('path');
  });

  it('what was written is there after close and reopen, TTLs included', async () => {
    const path = tempDataDir();
    const clock = new ManualClock(5_000);
    const a = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
    await a.set('s', 'v');
    await a.set('t', 'w', { ttlMs: 1000 });
    await a.zadd('z', 2, 'b');
    await a.zadd('z', 1, 'a');
    await a.incr('n', 41);
    await a.close();
    clock.advance(500);
    const b = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
    expect(await b.mget(['s', 't', 'n'])).toEqual(['v', 'w', '41']);
    expect(await b.ttl('t')).toBe(500);
    expect(await b.zrangeByScore('z', -Infinity, Infinity)).toEqual(['a', 'b']);
    clock.advance(500);
    expect(await b.get('t')).toBeNull();
    await b.close();
  });

  it('the sweep reclaims expired keys and their members in bounded batches', async () => {
    const clock = new ManualClock(0);
    const backend = await openTempDurable({ clock });
    const store = backend.store;
    store.transaction(() => {
      for (let i = 0; i < 1500; i++) store.set(`k${i}`, 'v', 10);
      for (let i = 0; i < 600; i++) store.zadd('zs', i, `m${i}`);
      store.expire('zs', 10);
    });
    store.set('forever', 'v');
    clock.advance(20);
    expect(store.sweep()).toBe(0); // expired, but reclaimed once their one-second bucket ends
    clock.advance(1000);
    expect(store.rawSize).toBe(1502);
    expect(store.sweep()).toBe(1000);
    expect(store.sweep()).toBe(501);
    expect(store.sweep()).toBe(0);
    expect(store.rawSize).toBe(1);
    // the set's members went with it: a new set under the same key starts empty
    store.zadd('zs', 1, 'fresh');
    expect(store.zrangeByScore('zs', -Infinity, Infinity)).toEqual(['fresh']);
    expect(store.get('forever')).toBe('v');
    await backend.close();
  });

  it('long members (past the key prefix) keep Redis order and identity', async () => {
    const backend = await openTempDurable();
    const head = 'x'.repeat(1100);
    const members = [`${head}b`, `${head}a`, `${head}c`, 'short', 'x'.repeat(1024), `${head}`];
    for (const m of members) await backend.zadd('z', 1, m);
    expect(await backend.zadd('z', 1, `${head}a`)).toBe(0);
    const sorted = [...members].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0));
    expect(await backend.zrangeByScore('z', 1, 1)).toEqual(sorted);
    expect(await backend.zrangeByScore('z', 1, 1, { offset: 2, count: 2 })).toEqual(
      sorted.slice(2, 4),
    );
    expect(backend.store.zrem('z', `${head}b`)).toBe(1);
    expect(backend.store.zscore('z', `${head}c`)).toBe(1);
    expect(await backend.zremRangeByScore('z', 0, 2)).toBe(5);
    expect(await backend.ttl('z')).toBe(-2);
    await backend.close();
  });

  it('a transaction that throws writes nothing', async () => {
    const backend = await openTempDurable();
    const store = backend.store;
    store.set('a', '1');
    store.zadd('z', 1, 'm');
    expect(() =>
      store.transaction(() => {
        store.set('a', '2');
        store.zadd('z', 2, 'n');
        store.incr('z'); // WRONGTYPE
      }),
    ).toThrow(/wrong kind/);
    expect(store.get('a')).toBe('1');
    expect(store.zrangeByScore('z', -Infinity, Infinity)).toEqual(['m']);
    await backend.close();
  });

  it('keys longer than the durable store accepts give a ConfigError naming the key', async () => {
    const backend = await openTempDurable();
    const r = await codeOf(backend.set('k'.repeat(2000), 'v'));
    expect(r.code).toBe('CONFIG_INVALID');
    await backend.close();
  });
});

describe('DurableBackend data directory', () => {
  it('a path that is a file: ConfigError naming it, the file untouched', async () => {
    const file = join(tempDataDir(), 'notes.txt');
    writeFileSync(file, 'keep me');
    const r = await codeOf(createCacheService({ path: file }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain(file);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('a directory holding other files: ConfigError, nothing written', async () => {
    const dir = tempDataDir();
    writeFileSync(join(dir, 'data.mdb'), 'someone else');
    const r = await codeOf(createCacheService({ path: dir }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain(dir);
    expect(readdirSync(dir)).toEqual(['data.mdb']);
  });

  it('an LMDB file that is not ours, or not LMDB at all: ConfigError, file unchanged', async () => {
    const foreign = tempDataDir();
    const { open } = await import('lmdb');
    const other = open({ path: join(foreign, 'mocra.mdb'), noSubdir: true });
    await other.put('theirs', 1);
    await other.close();
    const before = readFileSync(join(foreign, 'mocra.mdb'));
    const r = await codeOf(createCacheService({ path: foreign }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain('not a mocra store');
    expect(readFileSync(join(foreign, 'mocra.mdb')).equals(before)).toBe(true);
    expect(existsSync(join(foreign, 'mocra.lock'))).toBe(false);

    const garbage = tempDataDir();
    writeFileSync(join(garbage, 'mocra.mdb'), 'not lmdb at all, '.repeat(500));
    const g = await codeOf(createCacheService({ path: garbage }));
    expect(g.code).toBe('CONFIG_INVALID');
    expect(g.message).toContain(garbage);
    expect(readFileSync(join(garbage, 'mocra.mdb'), 'utf8')).toBe('not lmdb at all, '.repeat(500));
  });

  it('an empty LMDB file (a first open that died before writing its marker) is taken', async () => {
    const dir = tempDataDir();
    const { open } = await import('lmdb');
    await open({ path: join(dir, 'mocra.mdb'), noSubdir: true }).close();
    const store = await DurableBackend.open({ path: dir, sweepIntervalMs: 0 });
    await store.set('k', 'v');
    await store.close();
    const again = await DurableBackend.open({ path: dir, sweepIntervalMs: 0 });
    expect(await again.get('k')).toBe('v');
    await again.close();
  });

  it.skipIf(process.getuid?.() === 0)(
    'an unwritable directory: ConfigError naming it',
    async () => {
      const dir = tempDataDir();
      chmodSync(dir, 0o500);
      try {
        const r = await codeOf(createCacheService({ path: dir }));
        expect(r.code).toBe('CONFIG_INVALID');
        expect(r.message).toContain(dir);
        expect(r.message).toContain('not writable');
      } finally {
        chmodSync(dir, 0o700);
      }
    },
  );

  it('a path that cannot be created (under a file): ConfigError naming it', async () => {
    const file = join(tempDataDir(), 'plain');
    writeFileSync(file, 'x');
    const r = await codeOf(createCacheService({ path: join(file, 'data') }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain(join(file, 'data'));
  });

  it('a second open in the same process is refused until the first closes', async () => {
    const path = tempDataDir();
    const a = await DurableBackend.open({ path });
    const r = await codeOf(DurableBackend.open({ path }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain('already open');
    await a.close();
    const b = await DurableBackend.open({ path });
    await b.close();
  });

  it('another live process is refused; after it is killed with SIGKILL the lock is taken over', async () => {
    const path = tempDataDir();
    const script = `
      import { DurableBackend } from ${JSON.stringify(new URL('../../../src/store/durable/durable-backend.ts', import.meta.url).pathname)};
      const b = await DurableBackend.open({ path: process.env.DATA_DIR });
      await b.set('from-child', 'yes');
      console.log('ready');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        env: { ...process.env, DATA_DIR: path },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => c.toString().includes('ready') && resolve());
      child.once('exit', () => reject(new Error(`child exited: ${err}`)));
    });
    const r = await codeOf(DurableBackend.open({ path }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain(`pid ${child.pid}`);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const b = await DurableBackend.open({ path });
    expect(await b.get('from-child')).toBe('yes');
    await b.close();
    expect(existsSync(join(path, 'mocra.lock'))).toBe(false);
  });

  it('a lock left by a dead pid, or by a recycled pid, is stale', async () => {
    const path = tempDataDir();
    (await DurableBackend.open({ path })).close();
    writeFileSync(
      join(path, 'mocra.lock'),
      JSON.stringify({ pid: 2 ** 22 + 7, started: '1', token: 't' }),
    );
    const a = await DurableBackend.open({ path });
    await a.close();
    // this very pid, recorded with another start time: an earlier life of a recycled pid
    writeFileSync(
      join(path, 'mocra.lock'),
      JSON.stringify({ pid: process.pid, started: 'x', token: 't' }),
    );
    const b = await DurableBackend.open({ path });
    await b.close();
    writeFileSync(join(path, 'mocra.lock'), '{"pid": 12'); // half-written
    const c = await DurableBackend.open({ path });
    await c.close();
  });
});
