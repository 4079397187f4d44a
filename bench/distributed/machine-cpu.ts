/**
 * The whole machine's CPU time from /proc/stat (Linux): how much of the machine's cores a round
 * had, how much was busy, and how much the hypervisor took (steal). Elsewhere it reads zeros.
 */
import { readdirSync, readFileSync } from 'node:fs';
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

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * CPU ticks (user + system) of every live process, with its scheduler autogroup. With
 * `kernel.sched_autogroup_enabled` the scheduler shares the CPU fairly between autogroups (one
 * per session) before it shares it between the processes of a group: this is how one can see
 * which group got what.
 */
export type ProcessTicks = Map<number, { group: string; ticks: number }>;

export function processTicks(): ProcessTicks {
  const out: ProcessTicks = new Map();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(rest[11]) + Number(rest[12]);
      let group = 'none';
      try {
        group = readFileSync(`/proc/${pid}/autogroup`, 'utf8').split(' ')[0]!;
      } catch {
        // no autogroup file: autogroups are off or the process is gone
      }
      out.set(Number(pid), { group, ticks });
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Cores used per autogroup over an interval (processes that ended in between are left out). */
export function groupCoresBetween(
  before: ProcessTicks,
  after: ProcessTicks,
  seconds: number,
): Map<string, number> {
  const groups = new Map<string, number>();
  for (const [pid, a] of after) {
    const b = before.get(pid);
    const ticks = a.ticks - (b && b.group === a.group ? b.ticks : 0);
    if (ticks > 0) groups.set(a.group, (groups.get(a.group) ?? 0) + ticks);
  }
  for (const [g, ticks] of groups) groups.set(g, ticks / TICKS_PER_SECOND / seconds);
  return groups;
}

/** The autogroup of a process of ours. */
export function autogroupOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/autogroup`, 'utf8').split(' ')[0]!;
  } catch {
    return 'none';
  }
}
