/**
 * What a node's success commit carries: the items its parses returned (each an entry with its
 * own id, its node's identity and its request) and its successor nodes (each a parser-task
 * message), built from the checked outputs of its requests.
 */
import { ConfigError, isMocraError } from '../../errors.js';
import type { LogFields } from '../../observe/logger.js';
import { encodeMessage, type ParserTaskModel } from '../messages.js';
import type { NodeId } from '../node-id.js';
import type { Successor } from '../state/index.js';
import { OUTBOX_ITEM, OUTBOX_PTM } from './outbox.js';
import type { ProcessorHost } from './processor-host.js';
import { NodeFailure, type ParsedRequest } from './step-output.js';
import type { ChainItem } from './types.js';

/** What the parses produced, as the commit's entries: the items, and the successor nodes. @internal */
export function commitOutputs(
  rt: Pick<ProcessorHost, 'keys' | 'telemetry'>,
  ptm: ParserTaskModel,
  node: NodeId,
  outputs: ParsedRequest[],
  lastStep: boolean,
  fields: LogFields,
): { successors: Successor[]; items: string[] } {
  const successors: Successor[] = [];
  const items: string[] = [];
  const nodeKey = rt.keys.ptmKey(node);
  for (let r = 0; r < outputs.length; r++) {
    const { request, out, children } = outputs[r]!;
    const outItems = out.items ?? [];
    for (let i = 0; i < outItems.length; i++) {
      const item = outItems[i]!;
      const entry: ChainItem = {
        itemId: `${nodeKey}/${r}/${i}`,
        taskId: ptm.taskId,
        runId: ptm.runId,
        moduleId: ptm.moduleId,
        stepIdx: ptm.stepIdx,
        prefixRequest: ptm.prefixRequest,
        requestId: request.id,
        item,
      };
      items.push(OUTBOX_ITEM + serialised(() => JSON.stringify(entry)));
    }
    if (lastStep && (out.next?.length ?? 0) > 0) {
      rt.telemetry.log('warn', 'parse returned `next` on the last step; ignored', {
        ...fields,
        request_id: request.id,
      });
    }
    for (const c of children) {
      const child: ParserTaskModel = {
        taskId: ptm.taskId,
        runId: ptm.runId,
        account: ptm.account,
        platform: ptm.platform,
        moduleId: ptm.moduleId,
        stepIdx: c.stepIdx,
        prefixRequest: c.prefixRequest,
      };
      if (c.input !== undefined) child.data = c.input;
      if (ptm.metadata !== undefined) child.metadata = ptm.metadata;
      if (c.routeDepth > 0) child.routeDepth = c.routeDepth;
      const successor: Successor = {
        // the message's own object names the node (its extra fields are never read as its id)
        node: child,
        message: OUTBOX_PTM + serialised(() => encodeMessage({ kind: 'parser_task', body: child })),
      };
      if (c.key !== undefined) successor.key = c.key;
      successors.push(successor);
    }
  }
  return { successors, items };
}

/**
 * An item or successor written as JSON. What `parse` returned is checked at its top level only
 * (step-output.ts); a value nested deeper that JSON cannot hold (a bigint, a cycle) fails here,
 * as the parse's own failure: not retried (the same output would come again). A getter of the
 * output that throws is the parse's failure too, retried as user errors are.
 */
function serialised(write: () => string): string {
  try {
    return write();
  } catch (error) {
    if (error instanceof TypeError || isMocraError(error, 'MESSAGE_INVALID')) {
      throw new NodeFailure(
        'parse',
        new ConfigError(`parse returned a value that is not JSON (${error.message})`, {
          context: { field: 'parse' },
          cause: error,
        }),
      );
    }
    throw new NodeFailure('parse', error);
  }
}
