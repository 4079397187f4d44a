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
