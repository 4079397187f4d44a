/**
 * The commands one script call ran on Redis, seen through `MONITOR`: the call's `EVALSHA` (found
 * by a marker among its arguments, e.g. a key only it names), then the script's own commands,
 * which follow it at once (a script runs alone). Other tests may share the server: only the
 * commands of the marked call are returned.
 */
import { expect } from 'vitest';
import type { RedisTestContext } from './redis.js';

/** Runs `call` and returns the commands (name and arguments) its script ran, in order. */
export async function scriptCommands(
  redis: RedisTestContext,
  marker: string,
  call: () => Promise<unknown>,
): Promise<string[][]> {
  const monitor = await redis.client().monitor();
  const seen: { args: string[]; source: string }[] = [];
  let done: () => void = () => {};
  const end = new Promise<void>((resolve) => (done = resolve));
  const sentinel = `sentinel-${marker}`;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args[0]?.toLowerCase() === 'echo' && args[1] === sentinel) done();
    else seen.push({ args, source });
  });
  await call();
  // MONITOR reports in execution order: once the sentinel is seen, the call's commands were too
  await redis.client().echo(sentinel);
  await end;
  monitor.disconnect();
  // the last EVALSHA (or EVAL, after a NOSCRIPT) naming the marker
  const at = seen.findLastIndex(
    (e) =>
      ['evalsha', 'eval'].includes(e.args[0]?.toLowerCase() ?? '') &&
      e.args.some((a) => a.includes(marker)),
  );
  expect(at, `no EVALSHA naming ${marker}`).toBeGreaterThanOrEqual(0);
  const out: string[][] = [];
  for (let i = at + 1; i < seen.length && seen[i]!.source === 'lua'; i++) out.push(seen[i]!.args);
  return out;
}
