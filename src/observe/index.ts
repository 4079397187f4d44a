export { silentLogger } from './logger.js';
export type { Logger, LogFields } from './logger.js';
