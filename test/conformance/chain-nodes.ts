/** The nodes the chain state conformance suites name: a module's root in run r1 of task t1, and its children. */
import type { NodeAddress } from '../../src/chain/state/index.js';

export const root: NodeAddress = {
  taskId: 't1',
  runId: 'r1',
  account: 'acc',
  platform: 'web',
  moduleId: 'shop',
  stepIdx: 0,
  prefixRequest: '',
};

/** A node of `root`'s module at `stepIdx`, named by its prefix request. */
export const child = (prefix: string, stepIdx = 1): NodeAddress => ({
  ...root,
  stepIdx,
  prefixRequest: prefix,
});
