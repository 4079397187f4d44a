/**
 * The small part of the `lmdb` package's API the durable store uses, typed here so that mocra's
 * published types do not depend on `lmdb` (an optional peer dependency).
 * @internal
 */

/** One entry of a range read. */
export interface LmdbEntry {
  key: Buffer;
  value: unknown;
}

/** Options of a range read: keys are binary, `end` is exclusive. */
export interface LmdbRange {
  start?: Buffer;
  end?: Buffer;
  limit?: number;
}

/** One named database (binary keys) inside the environment. */
export interface LmdbDb {
  get(key: Buffer): unknown;
  putSync(key: Buffer, value: unknown): void;
  removeSync(key: Buffer): boolean;
  getRange(range: LmdbRange): Iterable<LmdbEntry>;
}

/** The LMDB environment (lmdb's root database). */
export interface LmdbEnv {
  openDB(options: {
    name: string;
    keyEncoding: 'binary';
    encoding: 'msgpack';
    cache: boolean;
  }): LmdbDb;
  transactionSync<T>(action: () => T): T;
  /** A value of the unnamed root database (string keys). */
  get(key: string): unknown;
  putSync(key: string, value: unknown): void;
  /** Keys of the unnamed root database (named databases are keys there too). */
  getKeys(options: { limit: number }): Iterable<unknown>;
  close(): Promise<void>;
}

/** What the durable store passes to lmdb's `open`. */
export interface LmdbOpenOptions {
  path: string;
  maxDbs: number;
  noSync?: boolean;
  noSubdir: boolean;
  cache: boolean;
  /** A reader: no write transaction, no write methods (lmdb leaves them off the objects). */
  readOnly?: boolean;
}

/** The `lmdb` module, as far as mocra uses it. */
export interface LmdbModule {
  open(options: LmdbOpenOptions): LmdbEnv;
}
