/**
 * Task records: what the task ingress stores for every later message of a task to load
 * (LoadTask), cached in a {@link PluginCache}; and the {@link TaskInfo} a step sees, with the
 * login info from `loadLoginInfo` (cached) or from the submitted TaskModel (never queued).
 */
import { PluginCache } from '../../cache/index.js';
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { Metrics } from '../../observe/metrics.js';
import type { CacheService } from '../../store/index.js';
import type { JsonObject, ParserTaskModel, TaskModel } from '../messages.js';
import type { TaskInfo } from '../module.js';
import { secretsOf } from './redact.js';
import type { ChainEngineOptions } from './types.js';

/** What is stored of a task. @internal */
export interface TaskRecord {
  taskId: string;
  runId: string;
  account: string;
  platform: string;
  modules: string[];
  metadata?: JsonObject;
}

/** LoadTask found no record of the task. @internal */
export class TaskNotFound extends Error {}

/** Options of {@link TaskRecords}. @internal */
export interface TaskRecordsOptions {
  store: CacheService;
  keys: ChainKeyBuilder;
  ttlMs: number;
  loadLoginInfo: ChainEngineOptions['loadLoginInfo'];
  /** Where the caches count hits and misses. */
  metrics: Metrics | undefined;
}

/** Saves and loads task records and builds the task info of a node. @internal */
export class TaskRecords {
  readonly #o: TaskRecordsOptions;
  readonly #records: PluginCache<TaskRecord>;
  readonly #logins: PluginCache<{ value: JsonObject | undefined }>;
  /** Login info of submitted runs, by run id (when there is no `loadLoginInfo`). */
  readonly #submitted = new Map<string, { loginInfo: JsonObject; usedAt: number }>();
  /**
   * The values of the login info `loadLoginInfo` gave a run's nodes here, by run id: a failure
   * that echoes them has them redacted too. Forgotten as submitted login info is.
   */
  readonly #loaded = new Map<
    string,
    { secrets: string[]; usedAt: number; last: JsonObject | undefined }
  >();

  constructor(options: TaskRecordsOptions) {
    this.#o = options;
    const metrics = options.metrics;
    this.#records = new PluginCache<TaskRecord>({
      ttlMs: 60_000,
      ttiMs: 30_000,
      maxEntries: 10_000,
      metrics,
      name: 'chain_task_record',
    });
    this.#logins = new PluginCache<{ value: JsonObject | undefined }>({
      ttlMs: 300_000,
      ttiMs: 120_000,
      maxEntries: 10_000,
      metrics,
      name: 'chain_login_info',
    });
  }

  /** Keeps the login info a run was submitted with, in this process only. */
  rememberLogin(runId: string, loginInfo: JsonObject): void {
    this.#submitted.set(runId, { loginInfo, usedAt: performance.now() });
  }

  /** The values of a run's submitted login info: never echoed in an error or a dead letter. */
  secrets(runId: string): string[] {
    const submitted = secretsOf(this.#submitted.get(runId)?.loginInfo);
    const loaded = this.#loaded.get(runId);
    return loaded === undefined ? submitted : [...submitted, ...loaded.secrets];
  }

  /** Whether login info of any run is held here (submitted, or loaded values kept to redact). */
  get holdsAny(): boolean {
    return this.#submitted.size > 0 || this.#loaded.size > 0;
  }

  /** Runs whose submitted login info this process holds. */
  get loginsHeld(): number {
    return this.#submitted.size;
  }

  /**
   * Forgets submitted login info: of every run (`idleForMs` undefined: no run has work left in
   * this process), or of the runs whose login info was not used for `idleForMs`.
   */
  pruneLogins(idleForMs?: number): void {
    if (idleForMs === undefined) {
      this.#submitted.clear();
      this.#loaded.clear();
      return;
    }
    const before = performance.now() - idleForMs;
    for (const [runId, entry] of this.#submitted)
      if (entry.usedAt < before) this.#submitted.delete(runId);
    for (const [runId, entry] of this.#loaded)
      if (entry.usedAt < before) this.#loaded.delete(runId);
  }

  /** Stores the record of a task (LoadTask of every later message reads it). */
  async save(task: TaskModel & { runId: string }): Promise<TaskRecord> {
    const record: TaskRecord = {
      taskId: task.taskId,
      runId: task.runId,
      account: task.account,
      platform: task.platform,
      modules: task.modules,
    };
    if (task.metadata !== undefined) record.metadata = task.metadata;
    await this.#o.store.set(this.#o.keys.taskRecord(task.taskId), JSON.stringify(record), {
      ttlMs: this.#o.ttlMs,
    });
    this.#records.set('task', task.taskId, record);
    return record;
  }

  /** LoadTask. @throws {@link TaskNotFound} when the task has no record. */
  load(taskId: string): Promise<TaskRecord> {
    return this.#records.getOrCompute('task', taskId, async () => {
      const text = await this.#o.store.get(this.#o.keys.taskRecord(taskId));
      if (text === null) throw new TaskNotFound(taskId);
      return JSON.parse(text) as TaskRecord;
    });
  }

  /** The task info the steps of a node see. */
  async taskInfo(record: TaskRecord, ptm: ParserTaskModel): Promise<TaskInfo> {
    const base = {
      taskId: ptm.taskId,
      runId: ptm.runId,
      account: ptm.account,
      platform: ptm.platform,
      metadata: Object.freeze(ptm.metadata ?? record.metadata ?? {}),
    };
    let loginInfo: JsonObject | undefined;
    const load = this.#o.loadLoginInfo;
    if (load) {
      loginInfo = (
        await this.#logins.getOrCompute(ptm.moduleId, ptm.taskId, async () => ({
          value: await load(base, ptm.moduleId),
        }))
      ).value;
      if (loginInfo !== undefined) this.#keepLoaded(ptm.runId, loginInfo);
    } else {
      const entry = this.#submitted.get(ptm.runId);
      if (entry) entry.usedAt = performance.now();
      loginInfo = entry?.loginInfo;
    }
    return { ...base, loginInfo: loginInfo === undefined ? undefined : Object.freeze(loginInfo) };
  }

  /** Keeps the values of loaded login info for the redaction of the run's failures. */
  #keepLoaded(runId: string, loginInfo: JsonObject): void {
    const entry = this.#loaded.get(runId);
    if (entry !== undefined) {
      entry.usedAt = performance.now();
      if (entry.last === loginInfo) return; // the same cached login info: its values are kept
      entry.last = loginInfo;
      for (const v of secretsOf(loginInfo)) if (!entry.secrets.includes(v)) entry.secrets.push(v);
      return;
    }
    const values = secretsOf(loginInfo);
    if (values.length > 0)
      this.#loaded.set(runId, { secrets: values, usedAt: performance.now(), last: loginInfo });
  }

  /** Lookups served from the caches, and those that had to load. */
  cacheStats(): { hits: number; misses: number } {
    const task = this.#records.stats();
    const login = this.#logins.stats();
    return { hits: task.hits + login.hits, misses: task.misses + login.misses };
  }
}
