/**
 * `ModuleProcessorWithChain`: everything that happens inside one module for one node — claim,
 * resolve the step, generate (with the once-only fallback), persist requests, download, parse,
 * and decide: commit the successors and items, or emit one ErrorTaskModel. Every state change
 * goes through the chain state machine; this class never touches state keys itself.
 */
import { createHash } from 'node:crypto';
import { ConfigError, isMocraError } from '../../errors.js';
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { LogFields } from '../../observe/logger.js';
import type { CacheService } from '../../store/index.js';
import {
  encodeMessage,
  type ChainErrorInfo,
  type ErrorTaskModel,
  type JsonValue,
  type ParserTaskModel,
} from '../messages.js';
import type {
  ChainRequest,
  DownloadResult,
  ModuleDefinition,
  ParseContext,
  ParseOutput,
  StepContext,
  TaskInfo,
} from '../module.js';
import {
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  FallbackCode,
  type ChainStateStore,
  type NodeAddress,
  type Successor,
} from '../state/index.js';
import type { DownloadPath } from './download.js';
import { isAbortLike } from './download.js';
import type { ChainEventMap, ChainItem } from './types.js';

/** A request with its id and method filled in. */
export type ResolvedRequest = Readonly<ChainRequest> & {
  readonly id: string;
  readonly method: string;
};

/** How one node's processing ended. */
export type NodeOutcome =
  | 'committed'
  | 'replayed'
  | 'failed'
  | 'duplicate_done'
  | 'stale_step'
  | 'out_of_order'
  | 'locked_by_other'
  | 'commit_rejected'
  | 'error_already_emitted'
  | 'released';

/** What the processor needs from its engine. @internal */
export interface ProcessorRuntime {
  readonly state: ChainStateStore;
  readonly store: CacheService;
  readonly keys: ChainKeyBuilder;
  readonly downloads: DownloadPath;
  readonly leaseMs: number;
  readonly stateTtlMs: number;
  readonly fallback: boolean;
  readonly signal: AbortSignal;
  emit<K extends keyof ChainEventMap>(name: K, event: ChainEventMap[K]): void;
  count(name: string, labels?: Record<string, string>): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields: LogFields): void;
  /** Publishes the outbox of a task (successors and items written by commits). */
  relay(taskId: string): void;
}

/** Outbox entries: 'p' + an encoded ParserTaskModel, or 'i' + an encoded {@link ChainItem}. */
export const OUTBOX_PTM = 'p';
/** @see OUTBOX_PTM */
export const OUTBOX_ITEM = 'i';
/** Outbox entry of an ErrorTaskModel ('e' + the encoded message), queued by a failure's commit. */
export const OUTBOX_ETM = 'e';
/** Outbox entry of a due retry ('r' + an encoded ParserTaskModel), promoted from the retry set. */
export const OUTBOX_RETRY = 'r';

interface PersistedRequest {
  request: ResolvedRequest;
  /** The node that generated the request: its step, prefix and input. */
  stepIdx: number;
  prefixRequest: string;
  input?: JsonValue;
}

class NodeFailure extends Error {
  constructor(
    readonly stage: 'generate' | 'download' | 'parse',
    readonly error: unknown,
  ) {
    super(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Runs the nodes of one module. The engine creates one per registered module and hands it
 * every ParserTaskModel of that module.
 *
 * @example
 * ```ts
 * // Created by the engine; users write modules with defineModule() and run them with createChainEngine().
 * ```
 */
export class ModuleProcessorWithChain {
  /** The module this processor runs. */
  readonly module: ModuleDefinition;
  readonly #rt: ProcessorRuntime;

  /** @internal */
  constructor(module: ModuleDefinition, runtime: ProcessorRuntime) {
    this.module = module;
    this.#rt = runtime;
  }

  /**
   * Processes one ParserTaskModel: claim, run the step, commit. `owner` must be stable across
   * re-deliveries of the same queue message (the engine uses worker id + message id) so a
   * replayed claim by the same owner continues its own lease.
   */
  async process(
    ptm: ParserTaskModel,
    task: TaskInfo,
    owner: string,
    raw: string,
    hold?: { claimed: boolean },
  ): Promise<NodeOutcome> {
    const rt = this.#rt;
    const node = toAddress(ptm);
    const epoch = ptm.epoch ?? 0;
    const fields = this.#fields(ptm);
    if (ptm.stepIdx >= this.module.steps.length) {
      throw new ConfigError(
        `module ${JSON.stringify(this.module.id)} has ${this.module.steps.length} steps; a message asks for step ${ptm.stepIdx}`,
        { context: { field: 'stepIdx' } },
      );
    }
    // from here until the claim answers, this message may hold the node's lease (a claim whose
    // reply was lost may have run): the engine must not hand a copy to another owner too soon
    if (hold) hold.claimed = true;
    const claim = await rt.state.claim({
      node,
      owner,
      leaseMs: rt.leaseMs,
      epoch,
      root: ptm.stepIdx === 0 && ptm.prefixRequest === '',
    });
    if (hold && claim.code !== ClaimCode.EXECUTE) hold.claimed = false;
    const claimName = CLAIM_NAMES[claim.code];
    rt.count('ptm_claim_total', { result: claimName });
    switch (claim.code) {
      case ClaimCode.EXECUTE:
        break;
      case ClaimCode.DUPLICATE_DONE:
        rt.relay(ptm.taskId); // a crash may have left its outbox unpublished
        rt.log('debug', 'node already done', { ...fields, decision: 'duplicate_done' });
        return 'duplicate_done';
      case ClaimCode.STALE_STEP:
        rt.log('debug', 'stale node skipped', { ...fields, decision: `stale:${claim.reason}` });
        return 'stale_step';
      case ClaimCode.LOCKED_BY_OTHER:
        rt.log('debug', 'node locked by another owner', { ...fields, decision: 'locked' });
        return 'locked_by_other';
      case ClaimCode.OUT_OF_ORDER: {
        // nothing to park: the parent's commit queues this node's message itself
        rt.log('debug', 'node arrived before its parent committed', {
          ...fields,
          decision: 'out_of_order',
        });
        return 'out_of_order';
      }
    }
    const version = claim.version;
    const idempotencyKey = `${ptm.runId}:${rt.keys.ptmKey(node)}:${version}`;
    const stepIdx = ptm.stepIdx;
    const step = this.module.steps[stepIdx]!;
    const ctx: StepContext = {
      task,
      moduleId: this.module.id,
      stepIdx,
      stepName: step.name,
      prefixRequest: ptm.prefixRequest,
      input: ptm.data,
      signal: rt.signal,
      idempotencyKey,
    };
    const started = performance.now();
    try {
      const requests = await this.#generate(ptm, ctx, fields);
      const lastStep = stepIdx === this.module.steps.length - 1;
      if (!lastStep) await this.#persist(ptm, requests);
      const outputs = await Promise.all(
        requests.map(async (request) => {
          let response: DownloadResult;
          try {
            response = await rt.downloads.download(this.module, ptm.taskId, request, rt.signal);
          } catch (error) {
            throw new NodeFailure('download', error);
          }
          try {
            const out = await step.parse(response, { ...ctx, request } as ParseContext);
            return { request, out: checkParseOutput(out) };
          } catch (error) {
            throw new NodeFailure('parse', error);
          }
        }),
      );
      const successors: Successor[] = [];
      const items: string[] = [];
      const nodeKey = rt.keys.ptmKey(node);
      for (const [r, { request, out }] of outputs.entries()) {
        for (const [i, item] of (out.items ?? []).entries()) {
          const entry: ChainItem = {
            itemId: `${nodeKey}/${r}/${i}`,
            taskId: ptm.taskId,
            runId: ptm.runId,
            moduleId: ptm.moduleId,
            stepIdx,
            prefixRequest: ptm.prefixRequest,
            requestId: request.id,
            item,
          };
          items.push(OUTBOX_ITEM + JSON.stringify(entry));
        }
        if (lastStep) {
          if ((out.next?.length ?? 0) > 0) {
            rt.log('warn', 'parse returned `next` on the last step; ignored', {
              ...fields,
              request_id: request.id,
            });
          }
          continue;
        }
        (out.next ?? []).forEach((input, i) => {
          const child: ParserTaskModel = {
            taskId: ptm.taskId,
            runId: ptm.runId,
            account: ptm.account,
            platform: ptm.platform,
            moduleId: ptm.moduleId,
            stepIdx: stepIdx + 1,
            prefixRequest: `${request.id}#${i}`,
            data: input,
          };
          if (ptm.metadata !== undefined) child.metadata = ptm.metadata;
          successors.push({
            node: toAddress(child),
            message: OUTBOX_PTM + encodeMessage({ kind: 'parser_task', body: child }),
          });
        });
      }
      const code = await rt.state.commitSuccess({ node, owner, version, successors, items });
      rt.count('ptm_commit_total', { result: COMMIT_NAMES[code] });
      if (code === CommitCode.COMMIT_OK || code === CommitCode.ALREADY_COMMITTED) {
        rt.relay(ptm.taskId);
        if (code === CommitCode.ALREADY_COMMITTED) return 'replayed';
        rt.emit('ModuleStepAdvanced', {
          type: 'ModuleStepAdvanced',
          ...eventBase(ptm),
          successors: successors.length,
          items: items.length,
          lastStep,
        });
        rt.log('debug', 'node committed', {
          ...fields,
          decision: 'commit_ok',
          successors: successors.length,
          items: items.length,
          duration_ms: Math.round(performance.now() - started),
        });
        return 'committed';
      }
      rt.log('warn', 'commit rejected: the claim was lost (lease expired or fenced)', {
        ...fields,
        decision: COMMIT_NAMES[code].toLowerCase(),
      });
      return 'commit_rejected';
    } catch (caught) {
      if (rt.signal.aborted) {
        rt.log('info', 'node abandoned: the engine is stopping; its lease will expire', {
          ...fields,
          decision: 'released',
        });
        return 'released';
      }
      const failure = caught instanceof NodeFailure ? caught : new NodeFailure('generate', caught);
      return this.#fail(ptm, node, owner, version, epoch, failure, fields);
    }
  }

  async #generate(
    ptm: ParserTaskModel,
    ctx: StepContext,
    fields: LogFields,
  ): Promise<ResolvedRequest[]> {
    const rt = this.#rt;
    const step = this.module.steps[ptm.stepIdx]!;
    try {
      return resolveRequests(await step.generate(ctx));
    } catch (error) {
      if (rt.signal.aborted || ptm.stepIdx === 0 || !rt.fallback || isAbortLike(error)) {
        throw new NodeFailure('generate', error);
      }
      const gate = await rt.state.tryAllowFallbackOnce(toAddress(ptm));
      const decision = gate === FallbackCode.ALLOWED ? 'allowed' : 'refused';
      rt.count(
        gate === FallbackCode.ALLOWED ? 'fallback_gate_hit_total' : 'fallback_gate_block_total',
      );
      rt.emit('ModuleStepFallback', { type: 'ModuleStepFallback', ...eventBase(ptm), decision });
      rt.log('warn', `generate failed; fallback ${decision}`, {
        ...fields,
        decision: `fallback_${decision}`,
        error: (error as Error)?.message,
      });
      if (gate !== FallbackCode.ALLOWED) throw new NodeFailure('generate', error);
      const input = await this.#rebuildInput(ptm, ctx.task, error);
      try {
        return resolveRequests(await step.generate({ ...ctx, input }));
      } catch (again) {
        throw new NodeFailure('generate', again);
      }
    }
  }

  /** Fallback: download the prefix request again and re-parse it to get this node's input. */
  async #rebuildInput(ptm: ParserTaskModel, task: TaskInfo, original: unknown): Promise<JsonValue> {
    const rt = this.#rt;
    const cut = ptm.prefixRequest.lastIndexOf('#');
    const index = Number(ptm.prefixRequest.slice(cut + 1));
    const requestId = ptm.prefixRequest.slice(0, cut);
    const text =
      cut > 0 && Number.isInteger(index)
        ? await rt.store.get(rt.keys.request(ptm.taskId, ptm.runId, ptm.moduleId, requestId))
        : null;
    if (text === null) throw new NodeFailure('generate', original);
    const saved = JSON.parse(text) as PersistedRequest;
    const parentStep = this.module.steps[saved.stepIdx];
    if (!parentStep) throw new NodeFailure('generate', original);
    let response: DownloadResult;
    try {
      response = await rt.downloads.download(this.module, ptm.taskId, saved.request, rt.signal);
    } catch (error) {
      throw new NodeFailure('download', error);
    }
    const parentNode = {
      ...toAddress(ptm),
      stepIdx: saved.stepIdx,
      prefixRequest: saved.prefixRequest,
    };
    const out = checkParseOutput(
      await parentStep.parse(response, {
        task,
        moduleId: this.module.id,
        stepIdx: saved.stepIdx,
        stepName: parentStep.name,
        prefixRequest: saved.prefixRequest,
        input: saved.input,
        signal: rt.signal,
        idempotencyKey: `${ptm.runId}:${rt.keys.ptmKey(parentNode)}:fallback`,
        request: saved.request,
      } as ParseContext),
    );
    const input = out.next?.[index];
    if (input === undefined) throw new NodeFailure('generate', original);
    return input;
  }

  async #persist(ptm: ParserTaskModel, requests: ResolvedRequest[]): Promise<void> {
    const rt = this.#rt;
    await Promise.all(
      requests.map((request) => {
        const saved: PersistedRequest = {
          request,
          stepIdx: ptm.stepIdx,
          prefixRequest: ptm.prefixRequest,
        };
        if (ptm.data !== undefined) saved.input = ptm.data;
        return rt.store.set(
          rt.keys.request(ptm.taskId, ptm.runId, ptm.moduleId, request.id),
          JSON.stringify(saved),
          { ttlMs: rt.stateTtlMs },
        );
      }),
    );
  }

  async #fail(
    ptm: ParserTaskModel,
    node: NodeAddress,
    owner: string,
    version: number,
    epoch: number,
    failure: NodeFailure,
    fields: LogFields,
  ): Promise<NodeOutcome> {
    const rt = this.#rt;
    const info = errorInfo(failure, epoch);
    const etm: ErrorTaskModel = {
      taskId: ptm.taskId,
      runId: ptm.runId,
      account: ptm.account,
      platform: ptm.platform,
      moduleId: ptm.moduleId,
      stepIdx: ptm.stepIdx,
      prefixRequest: ptm.prefixRequest,
      stayCurrentStep: true,
      error: info,
      attempt: epoch + 1,
    };
    if (ptm.data !== undefined) etm.data = ptm.data;
    if (ptm.metadata !== undefined) etm.metadata = ptm.metadata;
    // the ErrorTaskModel is queued in the outbox by the same transition that records the
    // failure: it exists exactly when the failure does, and survives this process
    const code = await rt.state.commitError({
      node,
      owner,
      version,
      errorHash: info.hash,
      message: OUTBOX_ETM + encodeMessage({ kind: 'error_task', body: etm }),
    });
    rt.count('ptm_commit_error_total', { result: COMMIT_ERROR_NAMES[code] });
    if (code === CommitErrorCode.ERROR_ALREADY_EMITTED) {
      rt.relay(ptm.taskId); // a replay after a lost reply: make sure the queued ErrorTaskModel goes out
      return 'error_already_emitted';
    }
    if (code === CommitErrorCode.FENCING_REJECT) {
      rt.log('warn', 'failure not recorded: the claim was lost', {
        ...fields,
        decision: 'fencing_reject',
      });
      return 'commit_rejected';
    }
    rt.log('warn', `node failed in ${failure.stage}: ${info.message}`, {
      ...fields,
      decision: 'error_task',
      error_code: info.code,
      attempt: etm.attempt,
    });
    rt.relay(ptm.taskId);
    rt.emit('ErrorTaskProduced', {
      type: 'ErrorTaskProduced',
      ...eventBase(ptm),
      attempt: etm.attempt,
      error: info,
    });
    return 'failed';
  }

  #fields(ptm: ParserTaskModel): LogFields {
    return {
      run_id: ptm.runId,
      task_id: ptm.taskId,
      module_id: ptm.moduleId,
      step_idx: ptm.stepIdx,
      prefix_request: ptm.prefixRequest,
      epoch: ptm.epoch ?? 0,
    };
  }
}

const CLAIM_NAMES = [
  'EXECUTE',
  'DUPLICATE_DONE',
  'STALE_STEP',
  'OUT_OF_ORDER',
  'LOCKED_BY_OTHER',
] as const;
const COMMIT_NAMES = ['COMMIT_OK', 'FENCING_REJECT', 'CAS_CONFLICT', 'ALREADY_COMMITTED'] as const;
const COMMIT_ERROR_NAMES = ['ERROR_EMIT_OK', 'ERROR_ALREADY_EMITTED', 'FENCING_REJECT'] as const;

/** The state-machine address of a node message. */
export function toAddress(m: ParserTaskModel): NodeAddress {
  return {
    taskId: m.taskId,
    runId: m.runId,
    account: m.account,
    platform: m.platform,
    moduleId: m.moduleId,
    stepIdx: m.stepIdx,
    prefixRequest: m.prefixRequest,
  };
}

/** The identity fields of a node event. */
export function eventBase(m: ParserTaskModel): {
  taskId: string;
  runId: string;
  moduleId: string;
  stepIdx: number;
  prefixRequest: string;
} {
  return {
    taskId: m.taskId,
    runId: m.runId,
    moduleId: m.moduleId,
    stepIdx: m.stepIdx,
    prefixRequest: m.prefixRequest,
  };
}

function errorInfo(failure: NodeFailure, epoch: number): ChainErrorInfo {
  const error = failure.error;
  const message = `${failure.stage}: ${error instanceof Error ? error.message : String(error)}`;
  const code =
    isMocraError(error) || (typeof error === 'object' && error !== null && 'code' in error)
      ? String((error as { code: unknown }).code)
      : undefined;
  // user errors are retried (a flaky page may parse next time); mocra errors say for themselves
  const retryable = isMocraError(error) ? error.retryable : true;
  const hash = createHash('sha1')
    .update(`${epoch}\u0000${failure.stage}\u0000${code ?? ''}\u0000${message}`)
    .digest('hex')
    .slice(0, 20);
  const info: ChainErrorInfo = { message: message.slice(0, 2000), hash, retryable };
  if (code !== undefined) info.code = code;
  const hint = isMocraError(error) ? error.retryAfterMs : undefined;
  if (hint !== undefined && Number.isFinite(hint) && hint >= 0)
    info.retryAfterMs = Math.round(hint);
  return info;
}

function resolveRequests(value: unknown): ResolvedRequest[] {
  if (!Array.isArray(value)) {
    throw new ConfigError(`generate must return an array of requests, got ${typeof value}`, {
      context: { field: 'generate' },
    });
  }
  const seen = new Set<string>();
  return value.map((r: unknown, i) => {
    if (r === null || typeof r !== 'object' || typeof (r as ChainRequest).url !== 'string') {
      throw new ConfigError(
        `generate returned an invalid request at [${i}]: expected { url: string }`,
        {
          context: { field: `requests[${i}]` },
        },
      );
    }
    const req = r as ChainRequest;
    const method = (req.method ?? 'GET').toUpperCase();
    let id = req.id;
    if (id === undefined) {
      id = `${method} ${req.url}`;
      if (req.body !== undefined)
        id += ` ${createHash('sha1').update(req.body).digest('hex').slice(0, 12)}`;
    }
    if (typeof id !== 'string' || id.length === 0) {
      throw new ConfigError(`generate returned a request with an empty id at [${i}]`, {
        context: { field: `requests[${i}].id` },
      });
    }
    if (seen.has(id)) {
      throw new ConfigError(`generate returned two requests with the id ${JSON.stringify(id)}`, {
        context: { field: `requests[${i}].id` },
      });
    }
    seen.add(id);
    return Object.freeze({ ...req, id, method });
  });
}

function checkParseOutput(out: unknown): ParseOutput {
  if (out === undefined || out === null) return {};
  if (typeof out !== 'object' || Array.isArray(out)) {
    throw new ConfigError('parse must return { items?, next? }', { context: { field: 'parse' } });
  }
  const o = out as ParseOutput;
  if (o.items !== undefined && !Array.isArray(o.items))
    throw new ConfigError('parse returned `items` that is not an array', {
      context: { field: 'items' },
    });
  if (o.next !== undefined && !Array.isArray(o.next))
    throw new ConfigError('parse returned `next` that is not an array', {
      context: { field: 'next' },
    });
  for (const v of [...(o.items ?? []), ...(o.next ?? [])]) {
    if (
      v === undefined ||
      typeof v === 'function' ||
      typeof v === 'symbol' ||
      typeof v === 'bigint'
    )
      throw new ConfigError('parse returned a value that is not JSON', {
        context: { field: 'parse' },
      });
  }
  return o;
}
