import { afterEach, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.doUnmock('lmdb');
  vi.resetModules();
});

it('without the optional lmdb package, a durable store is a ConfigError saying how to install it', async () => {
  vi.resetModules();
  vi.doMock('lmdb', () => {
    throw new Error("Cannot find package 'lmdb'");
  });
  const { createCacheService } = await import('../../../src/store/create.js');
  const error = await createCacheService({ path: '/nonexistent/mocra-data' }).then(
    () => null,
    (e: unknown) => e as { code?: string; message?: string; context?: { field?: string } },
  );
  expect(error?.code).toBe('CONFIG_INVALID');
  expect(error?.message).toContain('npm install lmdb');
  expect(error?.context?.field).toBe('path');
});

it('the in-process backend never loads lmdb', async () => {
  vi.resetModules();
  const loaded = vi.fn();
  vi.doMock('lmdb', () => {
    loaded();
    return {};
  });
  const { createCacheService } = await import('../../../src/store/create.js');
  const service = await createCacheService();
  await service.set('k', 'v');
  await service.close();
  expect(loaded).not.toHaveBeenCalled();
});
