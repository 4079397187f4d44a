/**
 * The durable {@link CacheService}: the same strings and sorted sets, answers and errors as the
 * in-process {@link LocalBackend}, kept in an LMDB environment in a data directory so that they
 * survive the process. Single-node mode: one process per data directory.
 */
import { ConfigError } from '../../errors.js';
import { systemClock } from '../../internal/clock.js';
import {
  optionalBoolean,
  optionalClock,
  optionalNumber,
  readOptions,
  requireString,
} from '../../internal/validate.js';
import { readLogger, type Logger } from '../../observe/logger.js';
import { StoreArgs } from '../args.js';
import { SyncBackend } from '../sync-backend.js';
import type { CacheService, CacheServiceBaseOptions } from '../types.js';
import { checkStoreDir, DATA_FILE, lockDataDir, prepareDataDir, type DirLock } from './data-dir.js';
import { DurableStore } from './durable-store.js';
import { loadLmdb } from './load-lmdb.js';
import type { LmdbEnv } from './lmdb-types.js';
import { readOnlyEnv } from './read-only-env.js';

/** Options of {@link DurableBackend.open}. */
export interface DurableBackendOptions extends CacheServiceBaseOptions {
  /** The data directory (created when missing; must be empty or hold a mocra store). */
  path: string;
  /**
   * Flush every commit to disk before it returns. Off, a commit survives the process being
   * killed (kill -9, a crash, a deploy) but not a power loss or an OS crash; on, it survives
   * those too, at the cost of one disk flush per write. @defaultValue false
   */
  fsync?: boolean;
  /** Period of the expiry sweep in ms; 0 turns it off (expiry stays lazy). @defaultValue 1000 */
  sweepIntervalMs?: number;
}

const W = 'DurableBackend';
const FORMAT_KEY = 'mocra:format';
/** The format of the data directory this version writes and reads. */
const FORMAT = { app: 'mocra', store: 'durable', version: 1 } as const;

const OPEN_LABEL = 'createCacheService: `path`';

function checkFormat(env: LmdbEnv, dir: string, label = OPEN_LABEL): void {
  const marker = env.get(FORMAT_KEY) as { app?: unknown; version?: unknown } | undefined;
  if (marker?.app !== FORMAT.app) {
    throw new ConfigError(
      `${label} ${JSON.stringify(dir)} holds an LMDB file that is not a mocra store; nothing was changed`,
      { context: { field: 'path', path: dir } },
    );
  }
  if (marker.version !== FORMAT.version) {
    throw new ConfigError(
      `${label} ${JSON.stringify(dir)} holds a mocra store of format ${String(marker.version)}; this version reads format ${FORMAT.version}`,
      { context: { field: 'path', path: dir } },
    );
  }
}

/** Options of {@link DurableBackend.openReadOnly}. @internal */
export interface DurableReadOnlyOptions {
  /** The data directory of an existing store. */
  path: string;
  /** The store's key prefix, as its writer opened it. @defaultValue '' */
  keyPrefix?: string;
  /** How errors name the path. @defaultValue 'DurableBackend.openReadOnly: `path`' */
  label?: string;
}

/**
 * The durable {@link CacheService} (`mode: 'single_node'`, `durable: true`) on LMDB. Open it with
 * `createCacheService({ path })` or {@link DurableBackend.open}; needs the optional package
 * `lmdb`.
 *
 * @example
 * ```ts
 * const store = await createCacheService({ path: './mocra-data' });
 * await store.set('greeting', 'hello', { ttlMs: 60_000 });
 * await store.close();
 * ```
 */
export class DurableBackend extends SyncBackend<DurableStore> implements CacheService {
  /** Always `'single_node'`: one process per data directory. */
  readonly mode = 'single_node' as const;
  /** Always true: what is written survives the process. */
  readonly durable = true as const;
  /** The absolute data directory. */
  readonly path: string;
  readonly #env: LmdbEnv;
  readonly #lock: DirLock;
  readonly #logger: Logger;
  readonly #args: StoreArgs;

  private constructor(
    path: string,
    env: LmdbEnv,
    lock: DirLock,
    store: DurableStore,
    args: StoreArgs,
    logger: Logger,
  ) {
    super(args, store);
    this.path = path;
    this.#env = env;
    this.#lock = lock;
    this.#args = args;
    this.#logger = logger;
  }

  /**
   * Opens (creating when missing) the store in `options.path` and locks it for this process.
   *
   * @throws {@link ConfigError} naming the path when it is a file, not writable, holds something
   * other than a mocra store, or is in use by another live process; or when `lmdb` is missing.
   */
  static async open(options: DurableBackendOptions): Promise<DurableBackend> {
    const o = readOptions(W, options, [
      'path',
      'keyPrefix',
      'logger',
      'clock',
      'fsync',
      'sweepIntervalMs',
    ]);
    const path = requireString(W, 'path', o.path);
    const args = new StoreArgs(W, o.keyPrefix);
    const clock = optionalClock(W, 'clock', o.clock, systemClock);
    const fsync = optionalBoolean(W, 'fsync', o.fsync, false);
    const sweepIntervalMs = optionalNumber(W, 'sweepIntervalMs', o.sweepIntervalMs, 1000, {
      integer: true,
      min: 0,
    });
    const logger = readLogger(W, 'logger', o.logger);
    const lmdb = await loadLmdb();
    const { dir, existing } = prepareDataDir(path);
    const lock = lockDataDir(dir);
    let env: LmdbEnv | undefined;
    try {
      try {
        env = lmdb.open({
          path: `${dir}/${DATA_FILE}`,
          noSubdir: true,
          maxDbs: 8,
          noSync: !fsync,
          cache: false,
        });
      } catch (error) {
        throw new ConfigError(
          `createCacheService: \`path\` ${JSON.stringify(dir)} holds a ${DATA_FILE} that is not an LMDB file; nothing was changed`,
          { cause: error, context: { field: 'path', path: dir } },
        );
      }
      const opened = env;
      // an environment with nothing in it yet (a first open that died before its marker) is ours
      const empty = [...opened.getKeys({ limit: 1 })].length === 0;
      if (existing && !empty) checkFormat(opened, dir);
      else opened.transactionSync(() => opened.putSync(FORMAT_KEY, { ...FORMAT }));
      const store = new DurableStore(opened, { clock, sweepIntervalMs });
      logger.info({ path: dir, existing }, 'mocra durable store opened');
      return new DurableBackend(dir, opened, lock, store, args, logger);
    } catch (error) {
      await env?.close();
      lock.release();
      throw error;
    }
  }

  /**
   * Opens the store in `options.path` for reading only, without taking its lock: the process
   * that holds it (the workers) goes on writing meanwhile, since LMDB readers never block its
   * writer. Nothing is created or changed: the directory must already hold a mocra store. Reads
   * made in one turn of the event loop share one snapshot (what was committed when the first of
   * them ran); keys read once stay cached in this process, so this is for a short look (the
   * `mocra` command), not a long-lived reader. Writes throw.
   *
   * @throws {@link ConfigError} naming the path when it is missing, not a directory, holds no
   * mocra store or cannot be opened; or when `lmdb` is missing.
   * @internal
   */
  static async openReadOnly(options: DurableReadOnlyOptions): Promise<DurableBackend> {
    const label = options.label ?? 'DurableBackend.openReadOnly: `path`';
    const args = new StoreArgs(W, options.keyPrefix);
    const lmdb = await loadLmdb();
    const dir = checkStoreDir(options.path, label);
    let env: LmdbEnv | undefined;
    try {
      env = lmdb.open({
        path: `${dir}/${DATA_FILE}`,
        noSubdir: true,
        maxDbs: 8,
        readOnly: true,
        cache: false,
      });
      checkFormat(env, dir, label);
      const reader = readOnlyEnv(env, dir);
      const store = new DurableStore(reader, { sweepIntervalMs: 0 });
      const noLock: DirLock = { release: () => undefined };
      const logger = readLogger(W, 'logger', undefined);
      return new DurableBackend(dir, reader, noLock, store, args, logger);
    } catch (error) {
      await env?.close();
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(
        `${label} ${JSON.stringify(dir)} cannot be opened for reading: ${(error as Error).message}`,
        { cause: error, context: { field: 'path', path: dir } },
      );
    }
  }

  /** Stops the sweep, closes the environment and releases the directory lock. */
  async close(): Promise<void> {
    if (!this.#args.close()) return;
    this.store.stop();
    try {
      await this.#env.close();
    } finally {
      this.#lock.release();
    }
    this.#logger.debug({ mode: this.mode, path: this.path }, 'mocra cache service closed');
  }
}
