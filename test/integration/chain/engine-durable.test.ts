import { afterAll } from 'vitest';
import { DurableBackend } from '../../../src/index.js';
import { runChainEngineScenarios } from '../../conformance/chain-engine.js';
import { removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';

afterAll(removeTempDataDirs);

runChainEngineScenarios('DurableBackend (single_node, durable)', async () => {
  const store = await DurableBackend.open({ path: tempDataDir('engine') });
  return { store, cleanup: () => store.close() };
});
