import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { DownloadPath } from '../../../../src/chain/engine/download.js';
import type { Downloader } from '../../../../src/chain/engine/types.js';
import type { ModuleDefinition } from '../../../../src/chain/module.js';
import { DownloadError, RateLimiter, RetryPolicy } from '../../../../src/index.js';

const module = { id: 'm', steps: [] } as unknown as ModuleDefinition;
const request = { id: 'GET http://x/', url: 'http://x/', method: 'GET' };

function path(downloader: Downloader, timeoutMs: number): DownloadPath {
  return new DownloadPath({
    downloader,
    limiter: new RateLimiter({ global: false, perKey: { rate: 1e6, intervalMs: 1000 } }),
    retry: new RetryPolicy({ maxRetries: 0 }),
    concurrency: 4,
    metrics: undefined,
    timeoutMs,
    onTry: () => {},
  });
}

/** A downloader that answers only when its signal aborts (it rejects with the signal's reason). */
function hanging(seen: AbortSignal[]): Downloader {
  return (_request, { signal }) =>
    new Promise((_, reject) => {
      seen.push(signal);
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
}

describe('DownloadPath: the signal of a download attempt', () => {
  it('aborts the attempt with a TimeoutError after timeoutMs and fails it with a retryable DownloadError', async () => {
    const seen: AbortSignal[] = [];
    const node = new AbortController();
    const downloads = path(hanging(seen), 30);
    const error = await downloads.download(module, 't', request, node.signal).catch((e) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as DownloadError).message).toBe('GET http://x/ timed out after 30 ms');
    expect((error as DownloadError).retryable).toBe(true);
    expect(seen).toHaveLength(1);
    expect((seen[0]!.reason as DOMException).name).toBe('TimeoutError');
    // the attempt's listener on the node's signal is gone, the node's signal untouched
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(0);
    expect(node.signal.aborted).toBe(false);
    await downloads.close();
  });

  it('a downloader that ignores its signal and never answers: the try fails as a timeout after timeoutMs', async () => {
    const node = new AbortController();
    let tries = 0;
    const downloads = new DownloadPath({
      downloader: () => {
        tries++;
        return new Promise(() => {}); // never settles, never reads its signal
      },
      limiter: new RateLimiter({ global: false, perKey: { rate: 1e6, intervalMs: 1000 } }),
      retry: new RetryPolicy({ maxRetries: 1, initialDelayMs: 1, maxDelayMs: 1 }),
      concurrency: 4,
      metrics: undefined,
      timeoutMs: 30,
      onTry: () => {},
    });
    const started = performance.now();
    const error = await downloads.download(module, 't', request, node.signal).catch((e) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as DownloadError).message).toBe('GET http://x/ timed out after 30 ms');
    expect((error as DownloadError).retryable).toBe(true);
    // both tries were bounded by the timeout (a retry ran after the first one was given up)
    expect(tries).toBe(2);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(0);
    await downloads.close();
  });

  it('a downloader that answers no { status } fails with CONFIG_INVALID, not retried; a failing status without headers is a DownloadError', async () => {
    const node = new AbortController();
    for (const answer of [null, undefined, 'ok', { status: '200', body: '' }, { status: 200.5 }]) {
      let tries = 0;
      const downloads = new DownloadPath({
        downloader: async () => {
          tries++;
          return answer as never;
        },
        limiter: new RateLimiter({ global: false, perKey: { rate: 1e6, intervalMs: 1000 } }),
        retry: new RetryPolicy({ maxRetries: 2, initialDelayMs: 1, maxDelayMs: 1 }),
        concurrency: 4,
        metrics: undefined,
        timeoutMs: 1000,
        onTry: () => {},
      });
      const error = await downloads.download(module, 't', request, node.signal).catch((e) => e);
      expect(error, JSON.stringify(answer)).toMatchObject({
        code: 'CONFIG_INVALID',
        context: { field: 'downloader' },
      });
      expect(tries).toBe(1);
      await downloads.close();
    }
    const downloads = path(async () => ({ status: 503 }) as never, 1000);
    const error = await downloads.download(module, 't', request, node.signal).catch((e) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as DownloadError).status).toBe(503);
    await downloads.close();
  });

  it("follows the node's signal: its abort aborts the attempt with the node's reason (no timeout)", async () => {
    const seen: AbortSignal[] = [];
    const node = new AbortController();
    const downloads = path(hanging(seen), 60_000);
    const pending = downloads.download(module, 't', request, node.signal).catch((e) => e);
    await new Promise((r) => setTimeout(r, 5));
    const reason = new Error('lease lost');
    node.abort(reason);
    // the download is cancelled (not a timeout): the node's abort ends it
    expect(await pending).not.toBeInstanceOf(DownloadError);
    expect(seen[0]!.aborted).toBe(true);
    expect(seen[0]!.reason).toBe(reason);
    await downloads.close();
  });

  it("leaves no timer and no listener once an attempt answers (a node's downloads add none up)", async () => {
    const node = new AbortController();
    const downloads = path(
      async (_request, { signal }) => ({ status: 200, headers: {}, body: String(signal.aborted) }),
      60_000,
    );
    for (let i = 0; i < 20; i++) {
      const result = await downloads.download(module, 't', request, node.signal);
      expect(result.body).toBe('false');
    }
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(0);
    await downloads.close();
  });
});

describe('DownloadPath: the attempt signal is made when the downloader reads it', () => {
  type Ctx = Parameters<Downloader>[1];

  it('a downloader that never reads its signal adds no listener and no signal to the node', async () => {
    const node = new AbortController();
    let listeners = -1;
    const downloads = path(async () => {
      await new Promise((r) => setImmediate(r));
      listeners = getEventListeners(node.signal, 'abort').length;
      return { status: 200, headers: {}, body: 'ok' };
    }, 60_000);
    expect((await downloads.download(module, 't', request, node.signal)).body).toBe('ok');
    // one listener while the attempt runs: the retry's race with the node's signal
    expect(listeners).toBe(1);
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(0);
    await downloads.close();
  });

  it('the context is a plain object: its signal is an own enumerable property, spread and assignable', async () => {
    const node = new AbortController();
    let spread: Ctx | undefined;
    let assigned: AbortSignal | undefined;
    const other = new AbortController().signal;
    const downloads = path(async (_r, ctx) => {
      spread = { ...ctx };
      expect(Object.keys(ctx)).toEqual(['signal', 'moduleId', 'taskId', 'attempt']);
      ctx.signal = other;
      assigned = ctx.signal;
      return { status: 200, headers: {}, body: '' };
    }, 60_000);
    await downloads.download(module, 't', request, node.signal);
    expect(spread!.signal).toBeInstanceOf(AbortSignal);
    expect(spread!.signal.aborted).toBe(false);
    expect(spread).toMatchObject({ moduleId: 'm', taskId: 't', attempt: 1 });
    expect(assigned).toBe(other);
    await downloads.close();
  });

  it('read after a timeout it ignored: aborted with the TimeoutError, and its failure is the timeout', async () => {
    const node = new AbortController();
    let ctx: Ctx | undefined;
    const downloads = path(async (_r, c) => {
      ctx = c; // the signal is not read while the attempt runs
      await new Promise((r) => setTimeout(r, 60));
      throw new Error('gave up by itself');
    }, 20);
    const error = await downloads.download(module, 't', request, node.signal).catch((e) => e);
    expect((error as DownloadError).message).toBe('GET http://x/ timed out after 20 ms');
    expect(ctx!.signal.aborted).toBe(true);
    expect((ctx!.signal.reason as DOMException).name).toBe('TimeoutError');
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(0);
    await downloads.close();
  });

  it("read after the node aborted while the attempt ran: aborted with the node's reason", async () => {
    const node = new AbortController();
    let ctx: Ctx | undefined;
    let finish!: () => void;
    const downloads = path(async (_r, c) => {
      ctx = c;
      await new Promise<void>((r) => (finish = r));
      return { status: 200, headers: {}, body: '' };
    }, 60_000);
    const pending = downloads.download(module, 't', request, node.signal).catch((e) => e);
    await new Promise((r) => setTimeout(r, 5));
    const reason = new Error('lease lost');
    node.abort(reason);
    await pending;
    finish();
    await new Promise((r) => setTimeout(r, 5));
    expect(ctx!.signal.aborted).toBe(true);
    expect(ctx!.signal.reason).toBe(reason);
    await downloads.close();
  });

  it('read after the attempt answered: not aborted, and no longer following the node', async () => {
    const node = new AbortController();
    let ctx: Ctx | undefined;
    const downloads = path(async (_r, c) => {
      ctx = c;
      return { status: 200, headers: {}, body: '' };
    }, 60_000);
    await downloads.download(module, 't', request, node.signal);
    const late = ctx!.signal;
    expect(late.aborted).toBe(false);
    node.abort(new Error('later'));
    expect(late.aborted).toBe(false);
    expect(ctx!.signal).toBe(late);
    await downloads.close();
  });

  it("read during the attempt, then the timeout: the first reason wins (the node's abort came first)", async () => {
    const node = new AbortController();
    let seen: AbortSignal | undefined;
    let finish!: () => void;
    const downloads = path(async (_r, ctx) => {
      await new Promise<void>((r) => (finish = r));
      seen = ctx.signal; // read only after the node aborted and the timeout passed
      return { status: 200, headers: {}, body: '' };
    }, 20);
    const pending = downloads.download(module, 't', request, node.signal).catch((e) => e);
    await new Promise((r) => setTimeout(r, 5));
    const reason = new Error('stop');
    node.abort(reason);
    await new Promise((r) => setTimeout(r, 40));
    finish();
    await pending;
    await new Promise((r) => setTimeout(r, 5));
    expect(seen!.reason).toBe(reason);
    await downloads.close();
  });
});

describe('DownloadPath: the node signal cancels waiting and running downloads', () => {
  it('a queued download of an aborted node rejects at once, without running', async () => {
    const node = new AbortController();
    const other = new AbortController();
    let calls = 0;
    let finish!: () => void;
    const downloads = new DownloadPath({
      downloader: async () => {
        calls++;
        await new Promise<void>((r) => (finish = r));
        return { status: 200, headers: {}, body: '' };
      },
      limiter: new RateLimiter({ global: false, perKey: { rate: 1e6, intervalMs: 1000 } }),
      retry: new RetryPolicy({ maxRetries: 0 }),
      concurrency: 1,
      metrics: undefined,
      timeoutMs: 60_000,
      onTry: () => {},
    });
    const first = downloads.download(module, 't', request, other.signal);
    const queued = downloads.download(module, 't', request, node.signal).catch((e) => e);
    await new Promise((r) => setTimeout(r, 5));
    node.abort(new Error('run cancelled'));
    expect(await queued).toBeInstanceOf(Error);
    expect(calls).toBe(1);
    finish();
    await first;
    expect(calls).toBe(1);
    await downloads.close();
  });

  it('a running download whose downloader ignores its signal rejects at once on abort', async () => {
    const node = new AbortController();
    const downloads = path(() => new Promise(() => {}), 60_000);
    const pending = downloads.download(module, 't', request, node.signal).catch((e) => e);
    await new Promise((r) => setTimeout(r, 5));
    node.abort(new Error('stop'));
    // the downloader never answers: only the abort can end the download
    expect(await pending).toBeInstanceOf(Error);
  });

  it('a module capped at one download: an abort ends the waiting and the running download at once, and frees the running one’s slot', async () => {
    const capped = { id: 'm', steps: [], concurrency: 1 } as unknown as ModuleDefinition;
    const started: string[] = [];
    const finish: (() => void)[] = [];
    const downloads = path(
      (r) =>
        new Promise((resolve) => {
          started.push(r.url);
          // ignores its signal: answers only when told
          finish.push(() => resolve({ status: 200, headers: {}, body: r.url }));
        }),
      60_000,
    );
    const nodeA = new AbortController();
    const nodeB = new AbortController();
    const a = downloads
      .download(capped, 't', { ...request, url: 'a' }, nodeA.signal)
      .catch((e) => e);
    const b = downloads
      .download(capped, 't', { ...request, url: 'b' }, nodeB.signal)
      .catch((e) => e);
    const c = downloads.download(
      capped,
      't',
      { ...request, url: 'c' },
      new AbortController().signal,
    );
    await new Promise((r) => setTimeout(r, 5));
    expect(started).toEqual(['a']);
    nodeB.abort(new Error('b abandoned')); // waiting: ends unrun
    nodeA.abort(new Error('a abandoned')); // running, its downloader deaf to the signal
    expect(await b).toBeInstanceOf(Error);
    expect(await a).toBeInstanceOf(Error);
    await new Promise((r) => setTimeout(r, 5));
    // the abandoned download gave its slot back at once: c runs, b never did
    expect(started).toEqual(['a', 'c']);
    finish[1]!();
    expect((await c).body).toBe('c');
    finish[0]!();
    await downloads.close();
  });

  it('calls a subclass’s own acquire and execute (the unchecked fast path is for mocra’s own)', async () => {
    const calls: string[] = [];
    class Limiter extends RateLimiter {
      override acquire(key: string, options?: { signal?: AbortSignal }): Promise<void> {
        calls.push(`acquire:${key}:${options?.signal instanceof AbortSignal}`);
        return super.acquire(key, options);
      }
    }
    class Retry extends RetryPolicy {
      override execute<T>(
        fn: Parameters<RetryPolicy['execute']>[0],
        options?: { signal?: AbortSignal },
      ): Promise<T> {
        calls.push('execute');
        return super.execute(fn, options) as Promise<T>;
      }
    }
    const downloads = new DownloadPath({
      downloader: async () => ({ status: 200, headers: {}, body: 'ok' }),
      limiter: new Limiter({ global: false, perKey: { rate: 1e6, intervalMs: 1000 } }),
      retry: new Retry({ maxRetries: 0 }),
      concurrency: 1,
      metrics: undefined,
      timeoutMs: 60_000,
      onTry: () => {},
    });
    await downloads.download(module, 't', request, new AbortController().signal);
    expect(calls).toEqual(['execute', 'acquire:m:true']);
    await downloads.close();
  });
});

describe('fetchDownloader', () => {
  it('answers the status, the body, and the headers with lower-case names, kept when the result is spread or serialised', async () => {
    const { createServer } = await import('node:http');
    const { fetchDownloader } = await import('../../../../src/chain/engine/download.js');
    const server = createServer((_req, res) => {
      res.writeHead(201, { 'X-Custom': 'yes', 'Content-Type': 'text/plain' });
      res.end('hello');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const url = `http://127.0.0.1:${port}/`;
      const result = await fetchDownloader(
        { id: `GET ${url}`, url, method: 'GET' },
        { signal: new AbortController().signal, moduleId: 'm', taskId: 't', attempt: 1 },
      );
      expect(result.status).toBe(201);
      expect(result.body).toBe('hello');
      expect(result.headers['x-custom']).toBe('yes');
      expect({ ...result }.headers['content-type']).toBe('text/plain');
      expect(JSON.parse(JSON.stringify(result)).headers['x-custom']).toBe('yes');
      result.headers = { replaced: '1' };
      expect(result.headers).toEqual({ replaced: '1' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
