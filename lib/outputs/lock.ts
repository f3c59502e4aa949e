/**
 * One writer per output folder: `OUT/.srf-native.lock` holds the writer's pid and host. A lock whose
 * process is gone on this host (kill -9, power loss) is stale and taken over; a live one, or one from
 * another host (shared file systems), is an OUTPUT_CONFLICT that names the file to delete, unless it
 * was taken by an earlier run of this same scheduler job, which runs once at a time, so its lock is this
 * process's own: a Slurm job keeps its SLURM_JOB_ID when it is requeued (preempted, node failure); a
 * Kubernetes Indexed Job's pod for one index is replaced only once the old one has failed
 * (podReplacementPolicy: Failed) and names its Job with SRF_KUBERNETES_JOB_UID (examples/kubernetes/).
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { SrfError } from '../errors.js';

export const LOCK_FILE = '.srf-native.lock';

export interface OutputLock {
  readonly file: string;
  release(): Promise<void>;
}

interface LockContent {
  pid: number;
  host: string;
  startedAt: string;
  command?: string;
  /** `slurm:<SLURM_JOB_ID>` or `kubernetes:<job uid>/<index>` when started by a scheduler. */
  job?: string;
}

/** The scheduler job this process belongs to, when it is one that runs a job id at most once at a time. */
function schedulerJob(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SLURM_JOB_ID) return `slurm:${env.SLURM_JOB_ID}`;
  if (env.SRF_KUBERNETES_JOB_UID && env.JOB_COMPLETION_INDEX) return `kubernetes:${env.SRF_KUBERNETES_JOB_UID}/${env.JOB_COMPLETION_INDEX}`;
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(file: string): Promise<LockContent | null> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as LockContent;
    return typeof value?.pid === 'number' ? value : null;
  } catch {
    return null;
  }
}

/** Takes the lock of `dir` (which must exist), or throws OUTPUT_CONFLICT. */
export async function acquireOutputLock(dir: string, command?: string): Promise<OutputLock> {
  const file = path.join(dir, LOCK_FILE);
  const content: LockContent = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  if (command) content.command = command;
  const job = schedulerJob();
  if (job) content.job = job;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(`${JSON.stringify(content)}\n`);
      await handle.close();
      return makeLock(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readLock(file);
    if (holder && holder.pid === process.pid && holder.host === content.host) {
      throw new SrfError('OUTPUT_CONFLICT', 'this process already writes to this output folder', { file: dir });
    }
    const restarted = holder !== null && job !== undefined && holder.job === job && (holder.host !== content.host || !alive(holder.pid));
    if (holder && holder.host !== content.host && !restarted) {
      throw new SrfError(
        'OUTPUT_CONFLICT',
        `another srf-native (pid ${holder.pid} on ${holder.host}) writes to this output folder; if it is gone, delete ${file}`,
        { file: dir },
      );
    }
    if (holder && !restarted && alive(holder.pid)) {
      throw new SrfError(
        'OUTPUT_CONFLICT',
        `another srf-native (pid ${holder.pid}) is writing to this output folder; wait for it, or use another --out`,
        { file: dir },
      );
    }
    // stale: its process is gone (or the file is unreadable half-written junk)
    await rm(file, { force: true });
  }
  throw new SrfError('OUTPUT_CONFLICT', `cannot take the lock ${file}: another process took it first`, { file: dir });
}

function makeLock(file: string): OutputLock {
  let released = false;
  // Exit paths that skip release() (a second Ctrl-C, process.exit) still remove our lock.
  const onExit = () => {
    if (released) return;
    released = true;
    try {
      const holder = JSON.parse(readFileSync(file, 'utf8')) as LockContent;
      if (holder.pid === process.pid) unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.on('exit', onExit);
  return {
    file,
    async release() {
      if (released) return;
      process.off('exit', onExit);
      onExit();
    },
  };
}
