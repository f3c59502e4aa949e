/**
 * `--shard auto`: which shard of a scheduler's array this process is, read from the environment the
 * scheduler sets, so one job script serves every array task.
 *
 *   Slurm job arrays        SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN / _STEP / _COUNT (or _MAX);
 *                           the index is (ID - MIN) / STEP, since `--array=1-7:3` gives ids 1, 4, 7
 *   Kubernetes Indexed Job  JOB_COMPLETION_INDEX; the pod is not told `completions`, so the count
 *                           comes with the option: `--shard auto/N`
 *
 * An explicit `I/N` always wins over the environment.
 */
import path from 'node:path';
import { SrfError, invalidArgument } from '../errors.js';
import { parseShard, type Shard } from './inputs.js';

export type ShardSource = 'explicit' | 'slurm' | 'kubernetes';

export interface ResolvedShard {
  shard: Shard;
  source: ShardSource;
  /** What was read, for the log: e.g. "Slurm array task 4 (SLURM_ARRAY_TASK_ID=4, MIN=1, STEP=3, COUNT=3)". */
  found: string;
}

type Env = Record<string, string | undefined>;

const AUTO = /^\s*auto\s*(?:\/\s*(\d+)\s*)?$/i;

/** True for `auto` and `auto/N`. */
export function isAutoShard(spec: string): boolean {
  return AUTO.test(spec);
}

function envInteger(env: Env, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text.trim() === '') return undefined;
  if (!/^\s*\d+\s*$/.test(text)) throw new SrfError('INVALID_ARGUMENT', `--shard auto: ${name}=${JSON.stringify(text)} is not a non-negative integer`);
  return Number(text);
}

function fromSlurm(env: Env, explicitCount: number | undefined): ResolvedShard {
  const id = envInteger(env, 'SLURM_ARRAY_TASK_ID') as number;
  const min = envInteger(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
  const step = envInteger(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
  const max = envInteger(env, 'SLURM_ARRAY_TASK_MAX');
  const listed = envInteger(env, 'SLURM_ARRAY_TASK_COUNT');
  const count = listed ?? (max === undefined ? undefined : Math.floor((max - min) / Math.max(1, step)) + 1);
  const seen = `SLURM_ARRAY_TASK_ID=${id}, MIN=${min}, STEP=${step}${max === undefined ? '' : `, MAX=${max}`}${listed === undefined ? '' : `, COUNT=${listed}`}`;
  if (count === undefined) {
    throw new SrfError('INVALID_ARGUMENT', `--shard auto: a Slurm array task (${seen}) without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX; pass --shard I/N`);
  }
  if (step < 1 || (id - min) % step !== 0 || id < min || (id - min) / step >= count) {
    throw new SrfError(
      'INVALID_ARGUMENT',
      `--shard auto: the Slurm array (${seen}) is not a range lo-hi[:step], so (ID - MIN) / STEP is not a shard index below ${count}; submit with --array=0-${count - 1} or pass --shard I/N`,
    );
  }
  if (explicitCount !== undefined && explicitCount !== count) {
    throw new SrfError('INVALID_ARGUMENT', `--shard auto/${explicitCount}: the Slurm array has ${count} tasks (${seen}); give the same count or plain --shard auto`);
  }
  const index = (id - min) / step;
  return { shard: { index, count }, source: 'slurm', found: `Slurm array task ${id} -> shard ${index}/${count} (${seen})` };
}

function fromKubernetes(env: Env, explicitCount: number | undefined): ResolvedShard {
  const index = envInteger(env, 'JOB_COMPLETION_INDEX') as number;
  if (explicitCount === undefined) {
    throw new SrfError(
      'INVALID_ARGUMENT',
      `--shard auto: a Kubernetes Indexed Job pod (JOB_COMPLETION_INDEX=${index}), but Kubernetes does not tell a pod the completions count; pass --shard auto/N with N = the Job's spec.completions`,
    );
  }
  if (index >= explicitCount) {
    throw new SrfError('INVALID_ARGUMENT', `--shard auto/${explicitCount}: JOB_COMPLETION_INDEX=${index} is not below ${explicitCount}; N must be the Job's spec.completions`);
  }
  return { shard: { index, count: explicitCount }, source: 'kubernetes', found: `Kubernetes Indexed Job -> shard ${index}/${explicitCount} (JOB_COMPLETION_INDEX=${index}, completions given as ${explicitCount})` };
}

/** `I/N`, `auto` or `auto/N` -> the shard, and where it came from. */
export function resolveShard(spec: string | Shard, env: Env = process.env): ResolvedShard {
  if (typeof spec === 'object' && spec !== null) {
    const shard = parseShard(`${spec.index}/${spec.count}`);
    return { shard, source: 'explicit', found: `shard ${shard.index}/${shard.count} as given` };
  }
  if (typeof spec !== 'string') throw invalidArgument('I/N, auto or auto/N', 'shard', spec);
  const auto = AUTO.exec(spec);
  if (!auto) {
    const shard = parseShard(spec);
    return { shard, source: 'explicit', found: `shard ${shard.index}/${shard.count} as given` };
  }
  const explicitCount = auto[1] === undefined ? undefined : Number(auto[1]);
  if (explicitCount !== undefined && explicitCount < 1) throw invalidArgument('auto/N with N >= 1', 'shard', spec);
  const slurm = env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_ID !== '';
  const kubernetes = env.JOB_COMPLETION_INDEX !== undefined && env.JOB_COMPLETION_INDEX !== '';
  if (slurm && kubernetes) {
    throw new SrfError('INVALID_ARGUMENT', `--shard auto: both SLURM_ARRAY_TASK_ID (${env.SLURM_ARRAY_TASK_ID}) and JOB_COMPLETION_INDEX (${env.JOB_COMPLETION_INDEX}) are set, so which array this is is ambiguous; pass --shard I/N`);
  }
  if (slurm) return fromSlurm(env, explicitCount);
  if (kubernetes) return fromKubernetes(env, explicitCount);
  const hint = env.SLURM_JOB_ID ? ` (a Slurm job ${env.SLURM_JOB_ID} runs here, but not as an array: submit with sbatch --array=0-N-1)` : '';
  throw new SrfError(
    'INVALID_ARGUMENT',
    `--shard auto found no scheduler array: neither SLURM_ARRAY_TASK_ID (sbatch --array) nor JOB_COMPLETION_INDEX (a Kubernetes Job with completionMode: Indexed) is set${hint}; pass --shard I/N`,
  );
}

/** The folder of shard I of N inside an output folder: `shard-I-of-N`. */
export function shardFolderName(shard: Shard): string {
  return `shard-${shard.index}-of-${shard.count}`;
}

/** `shard-I-of-N` -> the shard, or null for any other name. */
export function parseShardFolderName(name: string): Shard | null {
  const match = /^shard-(\d+)-of-(\d+)$/.exec(name);
  if (!match) return null;
  const index = Number(match[1]);
  const count = Number(match[2]);
  return index < count ? { index, count } : null;
}

/** A shard's output folder: `OUT/shard-I-of-N`, unless OUT already is that folder. */
export function shardOutputFolder(out: string, shard: Shard): string {
  const name = shardFolderName(shard);
  return path.basename(out) === name ? out : path.join(out, name);
}
