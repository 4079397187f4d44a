import { LocalChainState } from '../../../src/chain/state/index.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { runChainStateConformance } from '../../conformance/chain-state.js';

runChainStateConformance('LocalChainState', async () => {
  const clock = new ManualClock(1_000_000);
  const backend = new LocalBackend({ clock, sweepIntervalMs: 0, keyPrefix: 'x:' });
  return {
    state: new LocalChainState(backend),
    clock,
    raw: backend,
    cleanup: () => backend.close(),
  };
});
