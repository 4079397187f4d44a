/**
 * What a node's success commit carries: the items its parses returned (each an entry with its
 * own id, its node's identity and its request) and its successor nodes (each a parser-task
 * message), built from the checked outputs of its requests.
 */
import type { LogFields } from '../../observe/logger.js';
import { encodeMessage, type ParserTaskModel } from '../messages.js';
import type { NodeId } from '../node-id.js';
import type { Successor } from '../state/index.js';
import { OUTBOX_ITEM, OUTBOX_PTM } from './outbox.js';
import type { ProcessorHost } from './processor-host.js';
import type { ParsedRequest } from './step-output.js';
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
      items.push(OUTBOX_ITEM + JSON.stringify(entry));
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
        message: OUTBOX_PTM + encodeMessage({ kind: 'parser_task', body: child }),
      };
      if (c.key !== undefined) successor.key = c.key;
      successors.push(successor);
    }
  }
  return { successors, items };
}
