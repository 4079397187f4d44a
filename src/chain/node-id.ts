/**
 * The one name for a node of a run's tree inside the engine: {@link NodeId}. The older names
 * (`NodeRef` in messages, `PtmIdentity` in keys, `NodeAddress` in the state machine,
 * `NodeEventBase` on events) describe the same node. `NodeRef` and `NodeEventBase` are aliases
 * of the types here now. The state machine's `NodeAddress` has exactly the fields of a `NodeId`
 * and the keys' `PtmIdentity` those of a `NodeRef`, so each is passed where the other is meant;
 * they become aliases when their owners switch.
 */
/** Identifies one node: a step of a module of a task's run, reached from one prefix request. */
export interface NodeId {
  /** The task the node belongs to (the hash tag of its keys). */
  taskId: string;
  /** The run (one execution of a task). */
  runId: string;
  /** The account the task runs for. */
  account: string;
  /** The platform the task runs on. */
  platform: string;
  /** The module. */
  moduleId: string;
  /** The step index within the module, from 0. */
  stepIdx: number;
  /** The request this node came from ('' for a module's first step). */
  prefixRequest: string;
}

/** The identity fields every node event carries: a {@link NodeId} without account and platform. */
export type NodeEventId = Omit<NodeId, 'account' | 'platform'>;

/** The {@link NodeId} of a node message (a fresh object with only the identity fields). */
export function toNodeId(m: NodeId): NodeId {
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
export function nodeEventId(m: NodeId): NodeEventId {
  return {
    taskId: m.taskId,
    runId: m.runId,
    moduleId: m.moduleId,
    stepIdx: m.stepIdx,
    prefixRequest: m.prefixRequest,
  };
}

/** Whether a node is a module's first node (step 0, no prefix request). */
export function isRootNode(m: Pick<NodeId, 'stepIdx' | 'prefixRequest'>): boolean {
  return m.stepIdx === 0 && m.prefixRequest === '';
}
