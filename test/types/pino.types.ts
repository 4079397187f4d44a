/**
 * Type test (checked by `npm run typecheck`, not run): a pino logger is a mocra Logger as it is.
 */
import { pino } from 'pino';
import { createChainEngine, defineModule, type Logger } from '../../src/index.js';

export const logger: Logger = pino({ level: 'silent' });
export const engine = createChainEngine({
  modules: [
    defineModule({
      id: 'm',
      steps: [{ name: 's', generate: () => [], parse: () => ({}) }],
    }),
  ],
  logger: pino({ level: 'silent' }).child({ component: 'chain' }),
});
