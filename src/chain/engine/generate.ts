/**
 * Runs a step's `generate`, with the once-only fallback: when a non-first step's `generate`
 * fails, the fallback gate lets one attempt rebuild the node's input by downloading its prefix
 * request again and re-parsing it with the parent step.
 */
import type { LogFields } from '../../observe/logger.js';
import type { JsonValue, ParserTaskModel } from '../messages.js';
import type {
  DownloadResult,
  ModuleDefinition,
  ParseContext,
  StepContext,
  TaskInfo,
} from '../module.js';
import { isRootNode, nodeEventId, toNodeId } from '../node-id.js';
import { FallbackCode } from '../state/index.js';
import { isAbortLike } from './download.js';
import type { ProcessorHost } from './processor.js';
import { inputAt, parentRequestId } from './routes.js';
import {
  NodeFailure,
  checkParseOutput,
  resolveRequests,
  type ResolvedRequest,
} from './step-output.js';

/**
 * A request as persisted for the fallback: the request (without its credential headers) and
 * the node that generated it. @internal
 */
export interface PersistedRequest {
  request: ResolvedRequest;
  /** The node that generated the request: its step, prefix and input. */
  stepIdx: number;
  prefixRequest: string;
  input?: JsonValue;
}

/**
 * The requests of a node: `generate`, and on a failure of a non-first step the fallback (which
 * runs under the node's signal, `ctx.signal`). Throws a {@link NodeFailure}.
 * @internal
 */
export async function generateRequests(
  host: ProcessorHost,
  module: ModuleDefinition,
  ptm: ParserTaskModel,
  ctx: StepContext,
  fields: LogFields,
): Promise<ResolvedRequest[]> {
  const step = module.steps[ptm.stepIdx]!;
  try {
    return resolveRequests(await step.generate(ctx));
  } catch (error) {
    if (ctx.signal.aborted || isRootNode(ptm) || !host.fallback || isAbortLike(error)) {
      throw new NodeFailure('generate', error);
    }
    const gate = await host.state.tryAllowFallbackOnce(toNodeId(ptm));
    const decision = gate === FallbackCode.ALLOWED ? 'allowed' : 'refused';
    host.telemetry.fallback(decision);
    host.telemetry.emit('ModuleStepFallback', {
      type: 'ModuleStepFallback',
      ...nodeEventId(ptm),
      decision,
    });
    host.telemetry.log('warn', `generate failed; fallback ${decision}`, {
      ...fields,
      decision: `fallback_${decision}`,
      error: (error as Error)?.message,
    });
    if (gate !== FallbackCode.ALLOWED) throw new NodeFailure('generate', error);
    const input = await rebuildInput(host, module, ptm, ctx.task, error, ctx.signal);
    try {
      return resolveRequests(await step.generate({ ...ctx, input }));
    } catch (again) {
      throw new NodeFailure('generate', again);
    }
  }
}

/** Fallback: download the prefix request again and re-parse it to get this node's input. */
async function rebuildInput(
  host: ProcessorHost,
  module: ModuleDefinition,
  ptm: ParserTaskModel,
  task: TaskInfo,
  original: unknown,
  signal: AbortSignal,
): Promise<JsonValue> {
  const requestId = parentRequestId(ptm.prefixRequest);
  const text =
    requestId !== ''
      ? await host.store.get(host.keys.request(ptm.taskId, ptm.runId, ptm.moduleId, requestId))
      : null;
  if (text === null) throw new NodeFailure('generate', original);
  const saved = JSON.parse(text) as PersistedRequest;
  const parentStep = module.steps[saved.stepIdx];
  if (!parentStep) throw new NodeFailure('generate', original);
  const request = await withCredentials(host, module, ptm, task, saved, signal);
  let response: DownloadResult;
  try {
    response = await host.downloads.download(module, ptm.taskId, request, signal);
  } catch (error) {
    throw new NodeFailure('download', error);
  }
  const out = checkParseOutput(
    await parentStep.parse(response, {
      ...parentContext(host, module, ptm, task, saved, signal),
      request,
    } as ParseContext),
  );
  // the parent's step: the previous one for a `next` input, any step for a routed one
  const input = inputAt(out, ptm.prefixRequest);
  if (input === undefined) throw new NodeFailure('generate', original);
  return input;
}

/**
 * The persisted request with its credentials derived again: the parent step's `generate` runs
 * once more on the saved input with the task info of now (its login info from the submitted
 * task or `loadLoginInfo`), and the request with the same id is the one downloaded. When that
 * fails or finds no such request, the persisted request (without credential headers) is used.
 */
async function withCredentials(
  host: ProcessorHost,
  module: ModuleDefinition,
  ptm: ParserTaskModel,
  task: TaskInfo,
  saved: PersistedRequest,
  signal: AbortSignal,
): Promise<ResolvedRequest> {
  const parentStep = module.steps[saved.stepIdx]!;
  try {
    const again = resolveRequests(
      await parentStep.generate(parentContext(host, module, ptm, task, saved, signal)),
    );
    return again.find((r) => r.id === saved.request.id) ?? saved.request;
  } catch {
    return saved.request;
  }
}

/** The step context of the parent step that made the saved request (for the fallback's re-runs). */
function parentContext(
  host: ProcessorHost,
  module: ModuleDefinition,
  ptm: ParserTaskModel,
  task: TaskInfo,
  saved: PersistedRequest,
  signal: AbortSignal,
): StepContext {
  const parentNode = {
    ...toNodeId(ptm),
    stepIdx: saved.stepIdx,
    prefixRequest: saved.prefixRequest,
  };
  return {
    task,
    moduleId: module.id,
    stepIdx: saved.stepIdx,
    stepName: module.steps[saved.stepIdx]!.name,
    prefixRequest: saved.prefixRequest,
    input: saved.input,
    signal,
    idempotencyKey: `${ptm.runId}:${host.keys.ptmKey(parentNode)}:fallback`,
  };
}
