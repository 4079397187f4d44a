/**
 * The whole machine's CPU time from /proc/stat (Linux): how much of the machine's cores a round
 * had, how much was busy, and how much the hypervisor took (steal). Elsewhere it reads zeros.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Jiffies of the aggregate `cpu` line of /proc/stat. */
export interface MachineTicks {
  busy: number;
  idle: number;
  steal: number;
  total: number;
}

export function machineTicks(): MachineTicks {
  let line: string | undefined;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  } catch {
    return { busy: 0, idle: 0, steal: 0, total: 0 };
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const f = (line ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq;
  return { busy, idle: idle + iowait, steal, total: busy + idle + iowait + steal };
}

/** Over an interval: cores busy and cores stolen, on average (0..cores). */
export function machineCoresBetween(
  before: MachineTicks,
  after: MachineTicks,
): { busyCores: number; stealCores: number; cores: number } {
  const cores = cpus().length;
  const total = after.total - before.total;
  if (total <= 0) return { busyCores: 0, stealCores: 0, cores };
  return {
    busyCores: ((after.busy - before.busy) / total) * cores,
    stealCores: ((after.steal - before.steal) / total) * cores,
    cores,
  };
}
