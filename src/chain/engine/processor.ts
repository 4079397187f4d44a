/**
 * `ModuleProcessorWithChain`: everything that happens inside one module for one node — claim,
 * resolve the step, generate (with the once-only fallback, see generate.ts), persist requests,
 * download, parse, and decide: commit the successors and items, or emit one ErrorTaskModel.
 * Every state change goes through the chain state machine; this class never touches state keys
 * itself. It talks to its engine through one interface, {@link ProcessorHost}, and answers with
 * a {@link NodeRun}.
 */
import { ConfigError } from '../../errors.js';
import type { LogFields } from '../../observe/logger.js';
import { encodeMessage, type ErrorTaskModel, type ParserTaskModel } from '../messages.js';
import type {
  DownloadResult,
  ModuleDefinition,
  ParseContext,
  ParseOutput,
  StepContext,
  TaskInfo,
} from '../module.js';
import { isRootNode, nodeEventId, toNodeId, type NodeId } from '../node-id.js';
import {
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  type ClaimInput,
  type ClaimResult,
  type CommitSuccessInput,
  type CommitSuccessResult,
  type Successor,
} from '../state/index.js';
import type { RunSlot } from './claim-slots.js';
import { NodeLease } from './node-lease.js';
import type { NodeOutcome, NodeRun, ProcessorHost } from './processor-host.js';
import { nodeLogFields, notClaimed, tookOver } from './not-claimed.js';
import { generateRequests, type PersistedRequest } from './generate.js';
import { OUTBOX_ETM } from './outbox.js';
import { withoutCredentialHeaders } from './redact.js';
import { childInputs, type ChildInput } from './routes.js';
import {
  NodeFailure,
  errorInfo,
  checkParseOutput,
  type ParsedRequest,
  type ResolvedRequest,
} from './step-output.js';
import { commitOutputs } from './commit-output.js';
import { CLAIM_NAMES, COMMIT_ERROR_NAMES, COMMIT_NAMES } from './telemetry.js';

export type { ResolvedRequest } from './step-output.js';

export type { NodeOutcome, NodeRun, ProcessorHost } from './processor-host.js';

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
  readonly #host: ProcessorHost;

  /** @internal */
  constructor(module: ModuleDefinition, host: ProcessorHost) {
    this.module = module;
    this.#host = host;
  }

  /**
   * Processes one ParserTaskModel: claim, run the step, commit. `owner` must be stable across
   * re-deliveries of the same queue message (the engine uses worker id + message id) so a
   * replayed claim by the same owner continues its own lease.
   * @throws what interrupted it (e.g. the store unavailable); nothing is committed then.
   */
  async process(ptm: ParserTaskModel, task: TaskInfo, owner: string): Promise<NodeOutcome> {
    const run = await this.run(ptm, task, owner);
    if ('error' in run) throw run.error;
    return run.outcome;
  }

  /**
   * Like {@link process}, but answers an interruption with its error and the lease state.
   * `keepAlive` keeps the node's queue delivery its own while the node runs (called with each
   * lease renewal); `delivery`, the id of that delivery in the parser stream, is acknowledged
   * by the commit itself where commits hand off (the outcome is then `committed`). @internal
   */
  async run(
    ptm: ParserTaskModel,
    task: TaskInfo,
    owner: string,
    keepAlive?: () => Promise<void>,
    delivery?: string,
  ): Promise<NodeRun> {
    if (ptm.stepIdx >= this.module.steps.length) {
      return {
        error: new ConfigError(
          `module ${JSON.stringify(this.module.id)} has ${this.module.steps.length} steps; a message asks for step ${ptm.stepIdx}`,
          { context: { field: 'stepIdx' } },
        ),
        leaseHeld: false,
      };
    }
    // from here until the claim answers, this message may hold the node's lease (a claim whose
    // reply was lost may have run): the engine must not hand a copy to another owner too soon
    let leaseHeld = true;
    // one NodeId per node: its key is hashed once (the key builder caches it by object)
    const node = toNodeId(ptm);
    const input: ClaimInput = {
      node,
      owner,
      leaseMs: this.#host.leaseMs,
      epoch: ptm.epoch ?? 0,
      root: isRootNode(ptm),
    };
    const slots = this.#host.slots;
    let slot: RunSlot | undefined;
    try {
      let claim: ClaimResult;
      if (slots === undefined) claim = await this.#host.state.claim(input);
      else {
        // a slot, and with it the claim the commit that handed it over made (else our own)
        const acquired = await slots.acquire(input);
        slot = acquired.slot;
        claim = acquired.claimed ?? (await this.#host.state.claim(input));
      }
      this.#host.telemetry.claim(CLAIM_NAMES[claim.code]);
      if (claim.code !== ClaimCode.EXECUTE) {
        leaseHeld = false;
        return { outcome: notClaimed(this.#host, ptm, claim) };
      }
      if (claim.reason === 'expired') tookOver(this.#host, ptm);
      return {
        outcome: await this.#leased(ptm, node, task, owner, claim, keepAlive, delivery, slot),
      };
    } catch (error) {
      return { error, leaseHeld };
    } finally {
      slot?.release();
    }
  }

  /**
   * The heartbeat of a claimed node: its lease is renewed (and its delivery kept) while it runs,
   * and its one AbortSignal is aborted when the engine stops or a renewal is refused.
   */
  async #leased(
    ptm: ParserTaskModel,
    node: NodeId,
    task: TaskInfo,
    owner: string,
    { version, leaseUntil }: ClaimResult,
    keepAlive: (() => Promise<void>) | undefined,
    delivery: string | undefined,
    slot: RunSlot | undefined,
  ): Promise<NodeOutcome> {
    const rt = this.#host;
    const fields = nodeLogFields(ptm);
    const { state, leaseMs, telemetry } = rt;
    const log = telemetry.log.bind(telemetry);
    // the node's parent signal: the engine stopping, or its run cancelled
    const nodeSignal = rt.runSignal?.(ptm.runId);
    const parent = nodeSignal?.signal ?? rt.signal;
    const lease = new NodeLease({
      state,
      node,
      owner,
      version,
      leaseMs,
      leaseUntil,
      parent,
      keepAlive,
      log,
      fields,
      heartbeat: rt.heartbeat,
    });
    try {
      return await this.#execute(ptm, node, task, owner, version, fields, lease, delivery, slot);
    } finally {
      lease.stop();
      nodeSignal?.release();
    }
  }

  /** The claimed node's work: generate, download, parse, then commit it, or its failure. */
  async #execute(
    ptm: ParserTaskModel,
    node: NodeId,
    task: TaskInfo,
    owner: string,
    version: number,
    fields: LogFields,
    lease: NodeLease,
    delivery: string | undefined,
    slot: RunSlot | undefined,
  ): Promise<NodeOutcome> {
    const rt = this.#host;
    const signal = lease.signal;
    const step = this.module.steps[ptm.stepIdx]!;
    const ctx: StepContext = {
      task,
      moduleId: this.module.id,
      stepIdx: ptm.stepIdx,
      stepName: step.name,
      prefixRequest: ptm.prefixRequest,
      input: ptm.data,
      signal,
      idempotencyKey: `${ptm.runId}:${rt.keys.ptmKey(node)}:${version}`,
    };
    const started = performance.now();
    try {
      const requests = await this.#generate(ptm, ctx, fields);
      const lastStep = ptm.stepIdx === this.module.steps.length - 1;
      const outputs = await Promise.all(requests.map((r) => this.#fetchAndParse(ptm, ctx, r)));
      // the requests whose children may need them again (the fallback re-parses them)
      const parents = outputs.filter((o) => o.children.length > 0).map((o) => o.request);
      if (parents.length > 0) await this.#persist(ptm, parents);
      const { successors, items } = commitOutputs(rt, ptm, node, outputs, lastStep, fields);
      // a node whose work outlived stop()'s limit, whose lease was lost, or whose run was
      // cancelled commits nothing
      signal.throwIfAborted();
      const at = lease.storeNow(); // the run's `updated`: no TIME in the commit
      const input: CommitSuccessInput = { node, owner, version, successors, items, at };
      if (rt.handOff !== undefined)
        input.handOff = delivery === undefined ? rt.handOff : { ...rt.handOff, delivery };
      const commit = await this.#commit(input, slot, ptm.taskId);
      const code = commit.code;
      rt.telemetry.commit(COMMIT_NAMES[code]);
      if (code === CommitCode.COMMIT_OK) this.#deduplicated(ptm, successors, commit.duplicates);
      if (code === CommitCode.COMMIT_OK && commit.handedOff === true)
        this.#handedOff(ptm, successors, commit.created, commit.duplicates, items.length);
      else if (code === CommitCode.COMMIT_OK || code === CommitCode.ALREADY_COMMITTED)
        rt.outboxWritten(ptm.taskId);
      if (code === CommitCode.COMMIT_OK || code === CommitCode.ALREADY_COMMITTED) {
        if (code === CommitCode.ALREADY_COMMITTED) return 'replayed';
        if (rt.telemetry.listens('ModuleStepAdvanced'))
          rt.telemetry.emit('ModuleStepAdvanced', {
            type: 'ModuleStepAdvanced',
            ...nodeEventId(ptm),
            successors: successors.length - commit.duplicates.length,
            items: items.length,
            lastStep,
          });
        const ms = performance.now() - started;
        rt.telemetry.processed(this.module.id, 'committed', ms);
        if (rt.telemetry.logs('debug'))
          rt.telemetry.log('debug', 'node committed', {
            ...fields,
            decision: 'commit_ok',
            successors: successors.length - commit.duplicates.length,
            deduplicated: commit.duplicates.length,
            items: items.length,
            duration_ms: Math.round(ms),
          });
        return 'committed';
      }
      rt.telemetry.processed(this.module.id, 'rejected', performance.now() - started);
      rt.telemetry.log('warn', 'commit rejected: the claim was lost (lease expired or fenced)', {
        ...fields,
        decision: COMMIT_NAMES[code].toLowerCase(),
      });
      return 'commit_rejected';
    } catch (caught) {
      if (signal.aborted) {
        rt.telemetry.log('info', 'node abandoned: the engine is stopping; its lease will expire', {
          ...fields,
          decision: 'released',
        });
        return 'released';
      }
      if (lease.lost) {
        rt.telemetry.processed(this.module.id, 'rejected', performance.now() - started);
        return 'commit_rejected'; // another owner has (or will have) the node
      }
      const failure = caught instanceof NodeFailure ? caught : new NodeFailure('generate', caught);
      const outcome = await this.#fail(ptm, node, owner, version, failure, fields);
      if (outcome === 'failed' || outcome === 'commit_rejected')
        rt.telemetry.processed(
          this.module.id,
          outcome === 'failed' ? 'failed' : 'rejected',
          performance.now() - started,
        );
      return outcome;
    }
  }

  /**
   * The success commit; with a slot and a node waiting for one, the commit claims that node too
   * and hands it the slot (one round trip for both, see claim-slots.ts).
   */
  async #commit(
    input: CommitSuccessInput,
    slot: RunSlot | undefined,
    taskId: string,
  ): Promise<CommitSuccessResult> {
    const next = slot?.handOver(taskId);
    if (next === undefined) return this.#host.state.commitSuccessDetailed(input);
    input.claim = next.input;
    let commit: CommitSuccessResult;
    try {
      commit = await this.#host.state.commitSuccessDetailed(input);
    } catch (error) {
      next.fail(error);
      throw error;
    }
    next.settle(commit.claimed);
    return commit;
  }

  /** Downloads one request and parses its response. Throws a {@link NodeFailure}. */
  async #fetchAndParse(
    ptm: ParserTaskModel,
    ctx: StepContext,
    request: ResolvedRequest,
  ): Promise<ParsedRequest> {
    const rt = this.#host;
    let response: DownloadResult;
    try {
      response = await rt.downloads.download(this.module, ptm.taskId, request, ctx.signal);
    } catch (error) {
      throw new NodeFailure('download', error);
    }
    let out: ParseOutput;
    let children: ChildInput[];
    try {
      const step = this.module.steps[ptm.stepIdx]!;
      out = checkParseOutput(await step.parse(response, { ...ctx, request } as ParseContext));
      children = childInputs(this.module, ptm.stepIdx, ptm.routeDepth ?? 0, request.id, out);
    } catch (error) {
      if (!ctx.signal.aborted) rt.telemetry.parsed(this.module.id, false);
      throw new NodeFailure('parse', error);
    }
    rt.telemetry.parsed(this.module.id, true);
    return { request, out, children };
  }

  /**
   * A commit that handed off by itself: its successors are in the parser stream (counted and
   * reported here, as the relay does for those it publishes) and its items in the items stream.
   */
  #handedOff(
    ptm: ParserTaskModel,
    successors: Successor[],
    created: number,
    duplicates: number[],
    items: number,
  ): void {
    const rt = this.#host;
    rt.handedOff?.(ptm.taskId, created, items);
    rt.telemetry.parserTaskProduced('commit', created);
    if (created === 0 || !rt.telemetry.listens('ParserTaskProduced')) return;
    const skipped = new Set(duplicates);
    for (const [i, s] of successors.entries()) {
      if (skipped.has(i)) continue;
      rt.telemetry.emit('ParserTaskProduced', {
        type: 'ParserTaskProduced',
        ...nodeEventId(s.node),
        source: 'commit',
      });
    }
  }

  /** Reports the keyed successors a commit skipped as duplicates: counted, one event each. */
  #deduplicated(ptm: ParserTaskModel, successors: Successor[], duplicates: number[]): void {
    if (duplicates.length === 0) return;
    const rt = this.#host;
    rt.telemetry.deduplicated(this.module.id, duplicates.length);
    if (!rt.telemetry.listens('InputDeduplicated')) return;
    for (const i of duplicates) {
      const s = successors[i]!;
      rt.telemetry.emit('InputDeduplicated', {
        type: 'InputDeduplicated',
        ...nodeEventId(ptm),
        targetStepIdx: s.node.stepIdx,
        key: s.key!,
      });
    }
  }

  /** The node's requests (see generate.ts), counted. */
  async #generate(
    ptm: ParserTaskModel,
    ctx: StepContext,
    fields: LogFields,
  ): Promise<ResolvedRequest[]> {
    const rt = this.#host;
    try {
      // generate (and its fallback) see the node's signal, ctx.signal
      const requests = await generateRequests(rt, this.module, ptm, ctx, fields);
      rt.telemetry.generated(this.module.id, true);
      return requests;
    } catch (error) {
      if (!ctx.signal.aborted) rt.telemetry.generated(this.module.id, false);
      throw error;
    }
  }

  async #persist(ptm: ParserTaskModel, requests: ResolvedRequest[]): Promise<void> {
    const rt = this.#host;
    const keys = requests.map((r) => rt.keys.request(ptm.taskId, ptm.runId, ptm.moduleId, r.id));
    // the run's clean-up finds them through its key index
    const indexed = rt.state.indexRunKeys(ptm.taskId, ptm.runId, keys);
    await Promise.all(
      requests.map((request, i) => {
        // credentials are never persisted: the fallback derives them again (see generate.ts)
        const kept = { ...request };
        const headers = withoutCredentialHeaders(request.headers);
        if (headers === undefined) delete kept.headers;
        else kept.headers = headers;
        const saved: PersistedRequest = {
          request: kept,
          stepIdx: ptm.stepIdx,
          prefixRequest: ptm.prefixRequest,
        };
        if (ptm.data !== undefined) saved.input = ptm.data;
        return rt.store.set(keys[i]!, JSON.stringify(saved), { ttlMs: rt.stateTtlMs });
      }),
    );
    await indexed;
  }

  async #fail(
    ptm: ParserTaskModel,
    node: NodeId,
    owner: string,
    version: number,
    failure: NodeFailure,
    fields: LogFields,
  ): Promise<NodeOutcome> {
    const rt = this.#host;
    const epoch = ptm.epoch ?? 0;
    const info = errorInfo(failure, epoch, rt.secrets?.(ptm.runId));
    const etm: ErrorTaskModel = {
      ...toNodeId(ptm),
      stayCurrentStep: true,
      error: info,
      attempt: epoch + 1,
    };
    if (ptm.data !== undefined) etm.data = ptm.data;
    if (ptm.metadata !== undefined) etm.metadata = ptm.metadata;
    if (ptm.routeDepth !== undefined) etm.routeDepth = ptm.routeDepth;
    // the ErrorTaskModel is queued in the outbox by the same transition that records the
    // failure: it exists exactly when the failure does, and survives this process
    const code = await rt.state.commitError({
      node,
      owner,
      version,
      errorHash: info.hash,
      message: OUTBOX_ETM + encodeMessage({ kind: 'error_task', body: etm }),
    });
    rt.telemetry.commitError(COMMIT_ERROR_NAMES[code], this.module.id);
    if (code === CommitErrorCode.ERROR_ALREADY_EMITTED) {
      rt.outboxWritten(ptm.taskId); // a replay after a lost reply: make sure the queued ErrorTaskModel goes out
      return 'error_already_emitted';
    }
    if (code === CommitErrorCode.FENCING_REJECT) {
      rt.telemetry.log('warn', 'failure not recorded: the claim was lost', {
        ...fields,
        decision: 'fencing_reject',
      });
      return 'commit_rejected';
    }
    rt.telemetry.log('warn', `node failed in ${failure.stage}: ${info.message}`, {
      ...fields,
      decision: 'error_task',
      error_code: info.code,
      attempt: etm.attempt,
    });
    rt.outboxWritten(ptm.taskId);
    rt.telemetry.emit('ErrorTaskProduced', {
      type: 'ErrorTaskProduced',
      ...nodeEventId(ptm),
      attempt: etm.attempt,
      error: info,
    });
    return 'failed';
  }
}
