import { describe, expect, it } from 'vitest';
import { ConfigError, ErrorCode } from '../../../src/errors.js';
import { classifyRedisError } from '../../../src/store/redis-errors.js';

describe('classifyRedisError: one answer for every Redis caller', () => {
  const cases: [string, string, boolean][] = [
    ["Stream isn't writeable and enableOfflineQueue options is false", 'BACKEND_UNAVAILABLE', true],
    ['Connection is closed.', 'BACKEND_UNAVAILABLE', true],
    ['connect ECONNREFUSED 127.0.0.1:6379', 'BACKEND_UNAVAILABLE', true],
    ['read ECONNRESET', 'BACKEND_UNAVAILABLE', true],
    ['Command timed out', 'BACKEND_UNAVAILABLE', true],
    ['LOADING Redis is loading the dataset in memory', 'BACKEND_UNAVAILABLE', true],
    ['BUSY Redis is busy running a script.', 'BACKEND_UNAVAILABLE', true],
    ['CLUSTERDOWN The cluster is down', 'BACKEND_UNAVAILABLE', true],
    ['TRYAGAIN Multiple keys request during rehashing of slot', 'BACKEND_UNAVAILABLE', true],
    ['MASTERDOWN Link with MASTER is down', 'BACKEND_UNAVAILABLE', true],
    ["OOM command not allowed when used memory > 'maxmemory'.", 'BACKEND_OUT_OF_MEMORY', true],
    ['WRONGTYPE Operation against a key holding the wrong kind of value', 'WRONG_TYPE', false],
    ['ERR value is not an integer or out of range', 'NOT_AN_INTEGER', false],
    ['BUSYGROUP Consumer Group name already exists', 'STORE_COMMAND_FAILED', false],
    ['ERR unknown command', 'STORE_COMMAND_FAILED', false],
  ];
  for (const [message, code, retryable] of cases) {
    it(`${message.slice(0, 40)} → ${code}`, () => {
      const error = classifyRedisError(new Error(message), { key: 'k' });
      expect(error).toMatchObject({ code, retryable, context: { key: 'k' } });
    });
  }

  it('a script failure is SCRIPT_FAILED unless it is one of the kinds above', () => {
    expect(classifyRedisError(new Error('ERR user_script:1: boom'), { script: 's' })).toMatchObject(
      { code: ErrorCode.SCRIPT_FAILED, retryable: false, context: { script: 's' } },
    );
    expect(classifyRedisError(new Error('Command timed out'), { script: 's' })).toMatchObject({
      code: ErrorCode.BACKEND_UNAVAILABLE,
      context: { script: 's', mayHaveRun: true },
    });
    expect(classifyRedisError(new Error('OOM command not allowed'), { script: 's' })).toMatchObject(
      { code: ErrorCode.BACKEND_OUT_OF_MEMORY },
    );
  });

  it('a mocra error passes through; anything thrown is classified', () => {
    const config = new ConfigError('bad');
    expect(classifyRedisError(config)).toBe(config);
    expect(classifyRedisError('Connection is closed.')).toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
    });
    expect(classifyRedisError(undefined)).toMatchObject({ code: 'STORE_COMMAND_FAILED' });
  });
});
