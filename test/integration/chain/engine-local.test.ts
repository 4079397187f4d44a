import { LocalBackend } from '../../../src/index.js';
import { runChainEngineScenarios } from '../../conformance/chain-engine.js';
import { runChainEngineDefectScenarios } from '../../conformance/chain-engine-defects.js';

runChainEngineScenarios('LocalBackend (single_node)', async () => {
  const store = new LocalBackend();
  return { store, cleanup: () => store.close() };
});

runChainEngineDefectScenarios('LocalBackend (single_node)', async () => {
  const store = new LocalBackend();
  return { store, cleanup: () => store.close() };
});
