import { describe, expect, it } from 'vitest';
import { DownloadError, isRetryableError, isRetryableStatus } from '../../../src/index.js';

describe('the retryable-status rule (one place: retry/status.ts)', () => {
  const cases: [number, boolean][] = [
    [200, false],
    [404, false],
    [408, true],
    [429, true],
    [499, false],
    [500, true],
    [503, true],
    [599, true],
    [600, false],
    [699, false],
  ];
  for (const [status, retryable] of cases) {
    it(`${status} is ${retryable ? '' : 'not '}retryable for the classifier and DownloadError alike`, () => {
      expect(isRetryableStatus(status)).toBe(retryable);
      expect(isRetryableError({ status })).toBe(retryable);
      expect(new DownloadError('x', status).retryable).toBe(retryable);
    });
  }

  it('a download that got no response (status 0) is retryable', () => {
    expect(new DownloadError('x', 0).retryable).toBe(true);
  });
});
