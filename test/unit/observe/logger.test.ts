import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  LocalBackend,
  RedisBackend,
  consoleLogger,
  createCacheService,
  createChainEngine,
  defineModule,
  type Downloader,
  type Logger,
} from '../../../src/index.js';

/** A pino logger whose JSON lines land in `lines`. */
function capturedPino(): { logger: PinoLogger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

const fakeSite: Downloader = async () => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: '{}',
});

describe('Logger (pino order: fields, then message)', () => {
  it('a real pino logger gets the chain fields of an engine run', async () => {
    const { logger, lines } = capturedPino();
    const module = defineModule({
      id: 'failing',
      steps: [
        {
          name: 'only',
          generate: () => [{ url: 'http://fake/x' }],
          parse: () => {
            throw new Error('parse always fails');
          },
        },
      ],
    });
    const engine = createChainEngine({
      modules: [module],
      downloader: fakeSite,
      logger,
      nodeRetry: { maxRetries: 1, initialDelayMs: 1, maxDelayMs: 2, jitter: 0 },
      retryPollMs: 2,
    });
    await engine.start();
    await engine.submit({ taskId: 't1', account: 'a', platform: 'p', modules: ['failing'] });
    await engine.onIdle();
    await engine.stop();
    const failed = lines.find((l) => String(l.msg).startsWith('node failed in parse'));
    expect(failed).toMatchObject({
      level: 40,
      run_id: 't1',
      task_id: 't1',
      module_id: 'failing',
      step_idx: 0,
      runtime_mode: 'single_node',
    });
    expect(lines.find((l) => l.msg === 'chain engine started')).toMatchObject({ level: 30 });
  });

  it('backends write pino lines with their fields', async () => {
    const { logger, lines } = capturedPino();
    const service = await createCacheService({ logger, keyPrefix: 'x' });
    await service.close();
    expect(lines[0]).toMatchObject({
      msg: 'mocra cache service started',
      mode: 'single_node',
      keyPrefix: 'x:',
    });
  });

  it('refuses what is not a logger with a ConfigError naming `logger`', async () => {
    const bad: unknown[] = [
      true,
      'console',
      null,
      { info() {}, debug() {}, error() {} }, // no warn
      new Proxy(
        {},
        {
          get() {
            throw new Error('trap');
          },
        },
      ),
    ];
    for (const logger of bad) {
      await expect(createCacheService({ logger: logger as Logger })).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        context: { field: 'logger' },
      });
      expect(() => new LocalBackend({ logger: logger as Logger })).toThrow(ConfigError);
      expect(
        () => new RedisBackend({ redis: 'redis://127.0.0.1:1', logger: logger as Logger }),
      ).toThrow(ConfigError);
      expect(() => createChainEngine({ modules: [], logger: logger as Logger })).toThrow(
        ConfigError,
      );
    }
  });

  it('a throwing or rejecting logger never reaches the caller', async () => {
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    process.on('uncaughtException', unhandled);
    try {
      const throwing: Logger = {
        debug: () => {
          throw new Error('debug broke');
        },
        info: () => {
          throw new Error('info broke');
        },
        warn: () => Promise.reject(new Error('warn broke')) as never,
        error: () => {
          throw new Error('error broke');
        },
      };
      const service = await createCacheService({ logger: throwing });
      await service.set('k', 'v');
      await service.close(); // logs at debug
      // an unreachable Redis logs connection errors through `warn`: one that rejects, one that
      // throws, and one that is missing altogether (refused when the backend is built)
      const syncThrowing: Logger = {
        ...throwing,
        warn: () => {
          throw new Error('warn broke');
        },
      };
      for (const logger of [throwing, syncThrowing]) {
        const redis = new RedisBackend({ redis: 'redis://127.0.0.1:1', logger });
        await expect(redis.connect()).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
        await redis.close();
      }
      const { warn: _missing, ...noWarn } = throwing;
      expect(
        () => new RedisBackend({ redis: 'redis://127.0.0.1:1', logger: noWarn as Logger }),
      ).toThrow(ConfigError);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
      process.off('uncaughtException', unhandled);
    }
  });

  it('consoleLogger writes level and message first, filters by level, and checks its options', () => {
    const info = vi.spyOn(console, 'info').mockImplementation(() => {});
    const debug = vi.spyOn(console, 'debug').mockImplementation(() => {});
    try {
      const logger = consoleLogger();
      logger.info({ run_id: 'r' }, 'hello');
      logger.debug({}, 'hidden');
      expect(info).toHaveBeenCalledWith('INFO hello', { run_id: 'r' });
      expect(debug).not.toHaveBeenCalled();
      consoleLogger({ level: 'debug' }).debug({}, 'shown');
      expect(debug).toHaveBeenCalledWith('DEBUG shown');
      consoleLogger({ level: 'silent' }).info({}, 'never');
      expect(info).toHaveBeenCalledTimes(1);
    } finally {
      info.mockRestore();
      debug.mockRestore();
    }
    expect(() => consoleLogger({ level: 'loud' as never })).toThrow(/`level`/);
  });
});
