import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startWorkerProcess } from '../../helpers/worker-process.js';

const script = fileURLToPath(new URL('./fixtures/stop-in-flight.ts', import.meta.url));

describe('chain engine process lifetime', () => {
  it('keeps the process alive until stop() resolves, with a download waiting for its retry', async () => {
    const child = startWorkerProcess(script, 'stop-in-flight', {});
    const exit = await child.exited;
    expect(child.stdout, child.stderr).toContain('stopped');
    expect(exit.code).toBe(0);
  });
});
