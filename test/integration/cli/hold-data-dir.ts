/**
 * A process that holds a durable data directory (its lock) until it is killed: what the
 * workers are to the `mocra` command. Prints `ready` once the store is open.
 */
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';

const store = await DurableBackend.open({
  path: process.env.DATA_DIR!,
  keyPrefix: process.env.KEY_PREFIX ?? '',
  sweepIntervalMs: 0,
});
process.stdout.write('ready\n');
setInterval(() => void store.durable, 60_000);
