/**
 * The data directory of a durable store: checks that it is a directory this process may write
 * and that holds nothing but a mocra store, and the lock that lets one process at a time use it.
 *
 * The lock is a file `mocra.lock` holding the owner's pid and start time, created exclusively.
 * A second live process is refused; a lock left by a process that died (kill -9, power loss) is
 * recognised as stale — its pid is gone, or now belongs to a process that started at another
 * time — and taken over. It is removed on close and when the process exits normally.
 * @internal
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../../errors.js';

/** The LMDB file of the store inside the data directory (with its `-lock` companion). */
export const DATA_FILE = 'mocra.mdb';
/** The process lock inside the data directory. */
export const LOCK_FILE = 'mocra.lock';
const OURS = new Set([DATA_FILE, `${DATA_FILE}-lock`, LOCK_FILE]);

interface LockRecord {
  pid: number;
  /** The owner's start time as the OS reports it (Linux: clock ticks since boot), or ''. */
  started: string;
  token: string;
}

/** Lock files this process holds, by directory. */
const held = new Map<string, string>();
let exitHookInstalled = false;

/** How errors name the path of a store opened by `createCacheService` or `DurableBackend.open`. */
const OPEN_LABEL = 'createCacheService: `path`';

function fail(
  dir: string,
  what: string,
  cause?: unknown,
  extra: { label?: string; pid?: number } = {},
): never {
  const { label = OPEN_LABEL, pid } = extra;
  throw new ConfigError(`${label} ${JSON.stringify(dir)} ${what}`, {
    context: { field: 'path', path: dir, ...(pid === undefined ? {} : { pid }) },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Makes sure `path` is (or can become) a writable directory for a mocra store; creates it when
 * missing. Returns the absolute directory and whether it already holds a store.
 *
 * @throws {@link ConfigError} naming the path when it is a file, not writable, or holds files
 * that are not a mocra store.
 */
export function prepareDataDir(path: string): { dir: string; existing: boolean } {
  const dir = resolve(path);
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') fail(dir, 'cannot be read', error);
  }
  if (stat && !stat.isDirectory()) fail(dir, 'is a file, not a directory');
  if (!stat) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (error) {
      fail(dir, 'cannot be created', error);
    }
  }
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    fail(dir, 'is not writable by this process', error);
  }
  const entries = fs.readdirSync(dir);
  const existing = entries.includes(DATA_FILE);
  if (existing && !looksLikeLmdb(join(dir, DATA_FILE)))
    fail(dir, `holds a ${DATA_FILE} that is not an LMDB file; nothing was changed`);
  const foreign = entries.filter((e) => !OURS.has(e));
  if (foreign.length > 0 && !existing) {
    fail(
      dir,
      `is not empty and holds no mocra store (found ${foreign.slice(0, 3).join(', ')}); ` +
        'give an empty or new directory',
    );
  }
  return { dir, existing };
}

/**
 * Checks, without creating or changing anything, that `path` is a directory holding a mocra
 * store's LMDB file (for a reader that must not create a store where there is none). Returns
 * the absolute directory. `label` is how errors name the path.
 *
 * @throws {@link ConfigError} naming the path when it is missing, not a directory, unreadable,
 * or holds no LMDB `mocra.mdb`.
 */
export function checkStoreDir(path: string, label: string): string {
  const dir = resolve(path);
  let entries: string[];
  try {
    if (!fs.statSync(dir).isDirectory())
      fail(dir, 'is a file, not a directory', undefined, { label });
    entries = fs.readdirSync(dir);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    fail(dir, code === 'ENOENT' ? 'does not exist' : 'cannot be read', error, { label });
  }
  if (!entries.includes(DATA_FILE))
    fail(dir, `holds no mocra store (no ${DATA_FILE} in it)`, undefined, { label });
  if (!looksLikeLmdb(join(dir, DATA_FILE)))
    fail(dir, `holds a ${DATA_FILE} that is not an LMDB file`, undefined, { label });
  return dir;
}

const LMDB_MAGIC = Buffer.from([0xde, 0xc0, 0xef, 0xbe]); // 0xBEEFC0DE, little-endian

/**
 * Whether `file` starts like an LMDB data file (its meta page carries LMDB's magic number).
 * lmdb crashes the process on a file that is not one, so this runs before it is opened.
 */
export function looksLikeLmdb(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(64);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, n).includes(LMDB_MAGIC);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The start time of process `pid` as /proc reports it, or '' where there is no /proc. */
function startTimeOf(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // field 22 (starttime); the command name (field 2) may hold spaces, so count after ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '';
  } catch {
    return '';
  }
}

function isAlive(record: LockRecord): boolean {
  try {
    process.kill(record.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const started = startTimeOf(record.pid);
  return record.started === '' || started === '' || started === record.started;
}

function readLock(file: string): LockRecord | null {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockRecord>;
    if (typeof r.pid !== 'number' || typeof r.token !== 'string') return null;
    return { pid: r.pid, started: typeof r.started === 'string' ? r.started : '', token: r.token };
  } catch {
    return null; // unreadable or half-written by a process killed while writing it: stale
  }
}

/** A held data-directory lock; {@link release} gives it up. */
export interface DirLock {
  /** Removes the lock file (when it is still ours). */
  release(): void;
}

function removeIfOurs(file: string, token: string): void {
  const r = readLock(file);
  if (r?.token === token) fs.rmSync(file, { force: true });
}

/**
 * Takes the lock of `dir` for this process.
 *
 * @throws {@link ConfigError} naming the path when a live process (this one included) holds it;
 * its `context.pid` is the holder's pid when that is another process.
 */
export function lockDataDir(dir: string): DirLock {
  const file = join(dir, LOCK_FILE);
  if (held.has(dir)) fail(dir, 'is already open in this process; close the other store first');
  const me: LockRecord = {
    pid: process.pid,
    started: startTimeOf(process.pid),
    token: randomUUID(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3)
        fail(dir, 'cannot be locked', error);
    }
    const holder = readLock(file);
    if (holder && holder.pid !== process.pid && isAlive(holder)) {
      fail(
        dir,
        `is in use by another process (pid ${holder.pid}); one process per data directory`,
        undefined,
        { pid: holder.pid },
      );
    }
    // stale: its owner died (or is this process in an earlier life); take it over
    fs.rmSync(file, { force: true });
  }
  held.set(dir, me.token);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const [d, token] of held) removeIfOurs(join(d, LOCK_FILE), token);
    });
  }
  return {
    release(): void {
      if (held.get(dir) !== me.token) return;
      held.delete(dir);
      removeIfOurs(file, me.token);
    },
  };
}
