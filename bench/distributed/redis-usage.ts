/**
 * What Redis did, read from INFO on each server (one standalone redis-server, or each master of
 * a cluster, asked directly): its own CPU (INFO cpu, user + sys), the commands it ran (INFO
 * commandstats: the commands scripts run are counted too, each under its own name) and the read
 * events it processed (INFO stats `total_reads_processed`: one per batch of bytes read from a
 * client, about one per client round trip; the cluster bus is not counted).
 */
import type { Redis } from 'ioredis';

/** One server's counters at one moment, or their growth over a round. */
export interface RedisUsage {
  /** CPU, seconds. */
  cpu: number;
  commands: number;
  reads: number;
  /** Calls by command name (`evalsha`, `xreadgroup`, `hincrby`…). */
  byCommand: Record<string, number>;
}

export const NO_USAGE: RedisUsage = Object.freeze({ cpu: 0, commands: 0, reads: 0, byCommand: {} });

/** A server's counters so far (one INFO call: 1 command, 1 read event of its own). */
export async function redisUsage(admin: Redis): Promise<RedisUsage> {
  const info = await admin.info('all');
  const num = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1]);
  const byCommand: Record<string, number> = {};
  let commands = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    byCommand[m[1]!] = Number(m[2]);
    commands += Number(m[2]);
  }
  return {
    cpu: num('used_cpu_user') + num('used_cpu_sys'),
    commands,
    reads: num('total_reads_processed'),
    byCommand,
  };
}

/**
 * `after − before`, less the INFO call that read `after` (1 command, 1 read event). Commands
 * that did not move are left out.
 */
export function usageBetween(before: RedisUsage, after: RedisUsage): RedisUsage {
  const byCommand: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after.byCommand)) {
    const d = calls - (before.byCommand[name] ?? 0) - (name === 'info' ? 1 : 0);
    if (d !== 0) byCommand[name] = d;
  }
  return {
    cpu: after.cpu - before.cpu,
    commands: after.commands - before.commands - 1,
    reads: after.reads - before.reads - 1,
    byCommand,
  };
}

/** `a + b`. */
export function addUsage(a: RedisUsage, b: RedisUsage): RedisUsage {
  const byCommand = { ...a.byCommand };
  for (const [name, calls] of Object.entries(b.byCommand))
    byCommand[name] = (byCommand[name] ?? 0) + calls;
  return {
    cpu: a.cpu + b.cpu,
    commands: a.commands + b.commands,
    reads: a.reads + b.reads,
    byCommand,
  };
}

/** The counters of every server, in the order given. */
export function usageOfAll(admins: readonly Redis[]): Promise<RedisUsage[]> {
  return Promise.all(admins.map(redisUsage));
}
