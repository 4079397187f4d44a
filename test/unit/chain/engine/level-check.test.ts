import { describe, expect, it } from 'vitest';
import { levelCheck } from '../../../../src/chain/engine/telemetry.js';
import { silentLogger } from '../../../../src/index.js';

describe('levelCheck', () => {
  it('the silent logger writes nothing; a pino-like logger is asked; any other writes every level', () => {
    expect(levelCheck(undefined)('error')).toBe(false);
    expect(levelCheck(silentLogger)('debug')).toBe(false);
    const noop = (): void => {};
    const pinoLike = {
      debug: noop,
      info: noop,
      warn: noop,
      error: noop,
      level: 'info',
      isLevelEnabled(this: { level: string }, level: string) {
        return ['info', 'warn', 'error'].includes(level) && this.level === 'info';
      },
    };
    const check = levelCheck(pinoLike);
    expect(check('debug')).toBe(false);
    expect(check('warn')).toBe(true);
    const broken = {
      ...pinoLike,
      isLevelEnabled: () => {
        throw new Error('x');
      },
    };
    expect(levelCheck(broken)('debug')).toBe(true);
    expect(levelCheck({ debug: noop, info: noop, warn: noop, error: noop })('debug')).toBe(true);
  });
});
