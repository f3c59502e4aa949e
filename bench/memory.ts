/**
 * Peak resident memory of a child process, from Linux's /proc/<pid>/status: VmHWM is the
 * kernel's own high-water mark of the resident set, so polling it only has to catch the
 * process alive, not at its peak. The last value seen before it exits is kept.
 */
import { readFileSync } from 'node:fs';

export function readPeakRssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Polls the peak RSS of `pid` every `intervalMs` until stop() (call it once the process exited). */
export function watchPeakRss(pid: number, intervalMs = 50): { stop(): number } {
  let peak = readPeakRssBytes(pid) ?? 0;
  const timer = setInterval(() => {
    const v = readPeakRssBytes(pid);
    if (v !== undefined && v > peak) peak = v;
  }, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const v = readPeakRssBytes(pid);
      if (v !== undefined && v > peak) peak = v;
      return peak;
    },
  };
}

export function mib(bytes: number): number {
  return bytes / (1024 * 1024);
}

/** User + system CPU seconds a live process has used so far (/proc/<pid>/stat, clock ticks of 1/100 s). */
export function readCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return (utime + stime) / 100;
  } catch {
    return undefined;
  }
}
