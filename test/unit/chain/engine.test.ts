import { describe, expect, it } from 'vitest';
import {
  ClosedError,
  ConfigError,
  createChainEngine,
  defineModule,
  InMemoryMetrics,
  LocalBackend,
  type ChainEngineOptions,
  type Downloader,
  type DownloadResult,
  type JsonValue,
  type LogFields,
  type Logger,
} from '../../../src/index.js';
import { parseRetryAfter } from '../../../src/chain/engine/download.js';

const ok = (body: unknown): DownloadResult => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** A two-step module over a fake downloader: /list → ids, /item/:id → one item each. */
function twoStep(id = 'm') {
  return defineModule({
    id,
    steps: [
      {
        name: 'list',
        generate: () => [{ url: 'http://fake/list' }],
        parse: (r) => ({ next: (JSON.parse(r.body) as { ids: number[] }).ids }),
      },
      {
        name: 'item',
        generate: (ctx) => [{ url: `http://fake/item/${String(ctx.input)}` }],
        parse: (r) => ({ items: [JSON.parse(r.body) as JsonValue] }),
      },
    ],
  });
}

const fakeSite: Downloader = async (request) => {
  const url = new URL(request.url);
  if (url.pathname === '/list') return ok({ ids: [1, 2, 3] });
  const id = Number(url.pathname.split('/').pop());
  return ok({ id });
};

/** A logger that keeps every line as text: `level message fields`. */
function lineLogger(): { lines: string[]; logger: Logger } {
  const lines: string[] = [];
  const log =
    (level: string) =>
    (fields: LogFields, message: string): void => {
      lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
    };
  return {
    lines,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
  };
}

const fast: Partial<ChainEngineOptions> = {
  rateLimit: { global: false, perKey: { rate: 10_000, burst: 1000 } },
  downloadRetry: { maxRetries: 2, initialDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 100 },
  nodeRetry: { maxRetries: 2, initialDelayMs: 1, maxDelayMs: 5, jitter: 0 },
  retryPollMs: 2,
};

describe('createChainEngine options', () => {
  const cases: [string, unknown, RegExp][] = [
    ['no options', undefined, /modules/],
    ['empty modules', { modules: [] }, /`modules`/],
    ['unknown option', { modules: [twoStep()], concurency: 3 }, /unknown option `concurency`/],
    [
      'bad parser concurrency',
      { modules: [twoStep()], concurrency: { parser: 0 } },
      /concurrency\.parser/,
    ],
    ['bad lease', { modules: [twoStep()], leaseMs: -1 }, /`leaseMs`/],
    ['bad threshold', { modules: [twoStep()], moduleErrorThreshold: 1.5 }, /moduleErrorThreshold/],
    ['bad downloader', { modules: [twoStep()], downloader: 'fetch' }, /`downloader`/],
    [
      'bad node retry',
      { modules: [twoStep()], nodeRetry: { maxRetries: -1 } },
      /nodeRetry\.maxRetries/,
    ],
    [
      'bad item retry',
      { modules: [twoStep()], itemRetry: { maxRetries: -1 } },
      /itemRetry\.maxRetries/,
    ],
    [
      'unknown item retry option',
      { modules: [twoStep()], itemRetry: { tries: 3 } },
      /itemRetry.*tries/,
    ],
    ['duplicate module', { modules: [twoStep('a'), twoStep('a')] }, /registered twice/],
    ['invalid module', { modules: [{ id: 'x', steps: [] }] }, /modules\[0\].*steps/],
  ];
  for (const [name, options, message] of cases) {
    it(`rejects ${name} with a ConfigError naming the field`, () => {
      let caught: unknown;
      try {
        createChainEngine(options as ChainEngineOptions);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect(caught).toMatchObject({ code: 'CONFIG_INVALID' });
      expect((caught as Error).message).toMatch(message);
    });
  }

  it('needs an explicit state machine for a store it does not know', () => {
    const store = Object.assign(Object.create(null) as object, { mode: 'single_node' });
    expect(() => createChainEngine({ modules: [twoStep()], store: store as never })).toThrow(
      /explicit `state`/,
    );
  });

  it('is closed after stop(): start(), submit() and publish() reject with CLOSED', async () => {
    const engine = createChainEngine({ modules: [twoStep()], downloader: fakeSite, ...fast });
    await engine.start();
    await engine.stop();
    const task = { taskId: 't', account: 'a', platform: 'p', modules: ['m'] };
    for (const call of [
      () => engine.start(),
      () => engine.submit(task),
      () => engine.publish(task),
    ]) {
      const error = await call().then(
        () => 'resolved',
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(ClosedError);
      expect(error).toMatchObject({ code: 'CLOSED' });
    }
  });

  it('publish() of a task whose loginInfo is malformed dead-letters it naming loginInfo, as submit() rejects it; nothing runs', async () => {
    let downloads = 0;
    const engine = createChainEngine({
      modules: [twoStep()],
      downloader: (request, ctx) => {
        downloads++;
        return fakeSite(request, ctx);
      },
      ...fast,
    });
    await engine.start();
    const task = { taskId: 't', account: 'a', platform: 'p', modules: ['m'] };
    for (const loginInfo of ['hunter2-secret', ['hunter2-secret'], 42]) {
      await expect(
        engine.submit({ ...task, loginInfo } as unknown as Parameters<typeof engine.submit>[0]),
      ).rejects.toMatchObject({ code: 'MESSAGE_INVALID' });
      await engine.publish({ kind: 'task', body: { ...task, loginInfo } });
    }
    await engine.onIdle();
    const dead = engine.deadLetters();
    expect(dead).toHaveLength(3);
    for (const d of dead) expect(d.reason).toMatch(/`loginInfo/);
    expect(JSON.stringify(dead)).not.toContain('hunter2');
    expect(downloads).toBe(0);
    expect(engine.stats().loginInfoRuns).toBe(0);
    await engine.stop();
  });

  it('a loadLoginInfo that throws credential-looking text: its dead letter, event and logs have it redacted', async () => {
    const { lines, logger } = lineLogger();
    const engine = createChainEngine({
      modules: [twoStep()],
      downloader: fakeSite,
      logger,
      loadLoginInfo: () => {
        throw new Error('vault refused: password=hunter2-secret, Bearer abcd.efgh.ijkl');
      },
      ...fast,
    });
    const events: string[] = [];
    engine.on('MessageDeadLettered', (e) => events.push(e.reason));
    await engine.start();
    await engine.submit({ taskId: 't', account: 'a', platform: 'p', modules: ['m'] });
    await engine.onIdle();
    const dead = engine.deadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0]!.reason).toMatch(/vault refused: password=\[redacted\]/);
    expect(events).toHaveLength(1);
    const seen = JSON.stringify([dead, events, lines]);
    expect(seen).not.toContain('hunter2');
    expect(seen).not.toContain('abcd.efgh');
    await engine.stop();
  });

  it('a node failure echoing login info from loadLoginInfo has its values redacted (event, error task, logs)', async () => {
    const { lines, logger } = lineLogger();
    const failing = defineModule({
      id: 'm',
      steps: [
        {
          name: 'list',
          generate: () => [{ url: 'http://fake/list' }],
          parse: (_r, ctx) => {
            throw new Error(`login failed for ${String(ctx.task.loginInfo?.['apiSecret'])}`);
          },
        },
      ],
    });
    const engine = createChainEngine({
      modules: [failing],
      downloader: fakeSite,
      logger,
      loadLoginInfo: () => ({ apiSecret: 'zq81-hunter2-xx' }),
      ...fast,
      nodeRetry: { maxRetries: 0 },
    });
    const events: unknown[] = [];
    engine.on('ErrorTaskProduced', (e) => events.push(e));
    engine.on('NodeFailed', (e) => events.push(e));
    await engine.start();
    await engine.submit({ taskId: 't', account: 'a', platform: 'p', modules: ['m'] });
    await engine.onIdle();
    expect(events).toHaveLength(2);
    expect(JSON.stringify(events)).toMatch(/login failed for \[redacted\]/);
    expect(JSON.stringify([events, lines, engine.deadLetters()])).not.toContain('hunter2');
    await engine.stop();
  });

  it('a loadLoginInfo that fails for a moment is tried again (the run finishes); one that keeps failing is dead-lettered after 3 tries', async () => {
    for (const [failures, deadLetters] of [
      [2, 0],
      [Infinity, 1],
    ] as const) {
      let calls = 0;
      const engine = createChainEngine({
        modules: [twoStep()],
        downloader: fakeSite,
        loadLoginInfo: () => {
          if (++calls <= failures) throw new Error('secrets manager unavailable');
          return { token: 'x' };
        },
        ...fast,
      });
      await engine.start();
      const { runId } = await engine.submit({
        taskId: 't',
        account: 'a',
        platform: 'p',
        modules: ['m'],
      });
      await engine.onIdle();
      expect(engine.deadLetters(), `failures ${failures}`).toHaveLength(deadLetters);
      if (deadLetters === 0) {
        expect((await engine.runStatus(runId)).state).toBe('done');
        expect(calls).toBe(failures + 1);
      } else {
        expect(engine.deadLetters()[0]!.reason).toMatch(/secrets manager unavailable/);
        expect(calls).toBe(3);
      }
      await engine.stop();
    }
  });

  it('a value nested in parse output that JSON cannot hold fails the parse, not retried', async () => {
    const self: Record<string, unknown> = { id: 'x' };
    self['self'] = self;
    const outputs: [string, unknown][] = [
      ['a nested bigint item', { items: [{ a: 1n }] }],
      ['a nested bigint successor', { next: [{ a: 1n }] }],
      ['an item that refers to itself', { items: [self] }],
    ];
    for (const [what, output] of outputs) {
      let parses = 0;
      const module = defineModule({
        id: 'm',
        steps: [
          {
            name: 'one',
            generate: () => [{ url: 'http://fake/list' }],
            parse: () => {
              parses++;
              return output as never;
            },
          },
          { name: 'two', generate: () => [], parse: () => ({}) },
        ],
      });
      const engine = createChainEngine({ modules: [module], downloader: fakeSite, ...fast });
      const failed: { reason: string; message: string; retryable: boolean | undefined }[] = [];
      engine.on('NodeFailed', (e) =>
        failed.push({ reason: e.reason, message: e.error.message, retryable: e.error.retryable }),
      );
      await engine.start();
      await engine.submit({ taskId: 't', account: 'a', platform: 'p', modules: ['m'] });
      await engine.onIdle();
      await engine.stop();
      expect(failed, what).toHaveLength(1);
      expect(failed[0]!.message, what).toMatch(/^parse: parse returned a value that is not JSON/);
      expect(failed[0]!.retryable, what).toBe(false);
      expect(failed[0]!.reason, what).toBe('not_retryable');
      expect(parses, what).toBe(1);
    }
  });

  it('chooses the runtime mode from the store', async () => {
    const engine = createChainEngine({ modules: [twoStep()], store: new LocalBackend() });
    expect(engine.runtimeMode).toBe('single_node');
    expect(engine.stats().runtimeMode).toBe('single_node');
    await engine.stop();
  });
});

describe('chain engine behaviour (fake downloader)', () => {
  it('logs every node with its chain fields and never logs login info', async () => {
    const lines: { level: string; message: string; fields: LogFields }[] = [];
    const logger: Logger = {
      debug: (fields, message) => lines.push({ level: 'debug', message, fields }),
      info: (fields, message) => lines.push({ level: 'info', message, fields }),
      warn: (fields, message) => lines.push({ level: 'warn', message, fields }),
      error: (fields, message) => lines.push({ level: 'error', message, fields }),
    };
    const seenLogin: unknown[] = [];
    const module = defineModule({
      id: 'secretive',
      steps: [
        {
          name: 'only',
          generate: (ctx) => {
            seenLogin.push(ctx.task.loginInfo);
            return [{ url: 'http://fake/item/1' }];
          },
          parse: () => {
            throw new Error('always fails');
          },
        },
      ],
    });
    const engine = createChainEngine({ ...fast, modules: [module], downloader: fakeSite, logger });
    await engine.start();
    const { runId } = await engine.submit({
      taskId: 't',
      account: 'acc',
      platform: 'web',
      modules: ['secretive'],
      loginInfo: { password: 'hunter2-secret' },
    });
    await engine.onIdle();
    await engine.stop();
    expect(seenLogin[0]).toEqual({ password: 'hunter2-secret' });
    expect(JSON.stringify(lines)).not.toContain('hunter2-secret');
    const failure = lines.find((l) => l.message.startsWith('node failed in parse'));
    expect(failure?.fields).toMatchObject({
      run_id: runId,
      task_id: 't',
      module_id: 'secretive',
      step_idx: 0,
      prefix_request: '',
      decision: 'error_task',
      runtime_mode: 'single_node',
    });
    expect(lines.some((l) => l.fields.decision === 'give_up:max_retries')).toBe(true);
  });

  it('loads login info through the cache once per module and task', async () => {
    let loads = 0;
    const engine = createChainEngine({
      ...fast,
      modules: [twoStep()],
      downloader: fakeSite,
      loadLoginInfo: (task, moduleId) => {
        loads++;
        return { token: `${task.account}/${moduleId}` };
      },
    });
    const items: unknown[] = [];
    engine.on('ItemProduced', (e) => items.push(e.item.item));
    await engine.start();
    await engine.submit({ taskId: 't', account: 'acc', platform: 'web', modules: ['m'] });
    await engine.onIdle();
    await engine.stop();
    expect(items).toHaveLength(3);
    expect(loads).toBe(1);
  });

  it('honours Retry-After on a 429 and retries the download inside the node', async () => {
    let calls = 0;
    const downloader: Downloader = async (request, ctx) => {
      if (request.url.endsWith('/item/2') && ctx.attempt === 1) {
        calls++;
        return { status: 429, headers: { 'retry-after': '0.03' }, body: '' };
      }
      return fakeSite(request, ctx);
    };
    const engine = createChainEngine({ ...fast, modules: [twoStep()], downloader });
    await engine.start();
    const started = Date.now();
    await engine.submit({ taskId: 't', account: 'acc', platform: 'web', modules: ['m'] });
    await engine.onIdle();
    await engine.stop();
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    const stats = engine.stats();
    expect(stats.downloadRetries).toBe(1);
    expect(stats.items).toBe(3);
    expect(stats.nodeFailures).toBe(0);
  });

  it('gives a node up at once when its failure is not retryable', async () => {
    const module = defineModule({
      id: 'strict',
      steps: [
        {
          name: 'bad',
          // two requests with one id: a programming error (ConfigError), never retried
          generate: () => [{ url: 'http://fake/a' }, { url: 'http://fake/a' }],
          parse: () => ({}),
        },
      ],
    });
    const metrics = new InMemoryMetrics();
    const engine = createChainEngine({ ...fast, modules: [module], downloader: fakeSite, metrics });
    const failed: string[] = [];
    engine.on('NodeFailed', (e) => failed.push(e.reason));
    await engine.start();
    await engine.submit({ taskId: 't', account: 'acc', platform: 'web', modules: ['strict'] });
    await engine.onIdle();
    await engine.stop();
    expect(failed).toEqual(['not_retryable']);
    expect(engine.stats().retriesScheduled).toBe(0);
    expect(metrics.counter('error_task_given_up_total', { reason: 'not_retryable' })).toBe(1);
  });

  it('stops promptly with a node in flight, abandons it without recording a failure', async () => {
    let started!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    const hanging: Downloader = (_request, { signal }) =>
      new Promise((_resolve, reject) => {
        started();
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      });
    const engine = createChainEngine({
      ...fast,
      modules: [twoStep()],
      downloader: hanging,
      stopTimeoutMs: 50,
    });
    const errors: unknown[] = [];
    engine.on('ErrorTaskProduced', (e) => errors.push(e));
    await engine.start();
    await engine.submit({ taskId: 't', account: 'acc', platform: 'web', modules: ['m'] });
    await inFlight;
    const t0 = Date.now();
    await engine.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(errors).toHaveLength(0);
    await expect(
      engine.submit({ taskId: 'u', account: 'a', platform: 'p', modules: ['m'] }),
    ).rejects.toBeInstanceOf(ClosedError);
  });

  it('isolates a throwing event listener', async () => {
    const engine = createChainEngine({ ...fast, modules: [twoStep()], downloader: fakeSite });
    engine.on('ModuleStepAdvanced', () => {
      throw new Error('listener bug');
    });
    const items: unknown[] = [];
    engine.on('ItemProduced', (e) => items.push(e));
    await engine.start();
    await engine.submit({ taskId: 't', account: 'acc', platform: 'web', modules: ['m'] });
    await engine.onIdle();
    await engine.stop();
    expect(items).toHaveLength(3);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, ignores garbage', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
