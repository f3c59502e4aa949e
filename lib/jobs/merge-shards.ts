/**
 * `srf-native merge OUT`: the shards of one run (`run --shard I/N --out OUT`, each in
 * OUT/shard-I-of-N/) joined into OUT itself. Only complete shards are joined; missing ones (no folder
 * or no run.json yet) and unfinished ones (running, interrupted, failed) are reported, so a merge can
 * run while a scheduler still retries some tasks and be run again once they are done: each merge
 * rewrites OUT's outputs from the shard journals, which it only reads.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { SrfError } from '../errors.js';
import { readManifest, writeManifest, type RunStatus } from '../outputs/manifest.js';
import { mergeRuns, type MergeOptions, type MergeSummary } from './merge.js';
import { parseShardFolderName, shardFolderName } from './shard-env.js';

export interface ShardState {
  index: number;
  folder: string;
  /** `missing`: no folder or no run.json; else the shard run's own status. */
  status: RunStatus | 'missing';
  /** Journal lines of a joined shard. */
  lines?: number;
}

export interface ShardsReport {
  count: number;
  complete: ShardState[];
  /** Started but not complete: running, interrupted or failed. */
  unfinished: ShardState[];
  missing: ShardState[];
}

export interface MergeShardsOptions extends Omit<MergeOptions, 'inputs' | 'out'> {
  /** The --out of the shard runs; the merged outputs are written here too, unless `into` is given. */
  out: string;
  into?: string;
}

export interface MergeShardsSummary extends MergeSummary {
  shards: ShardsReport;
  /** True when all N shards are complete and joined. */
  allComplete: boolean;
}

/** The shards of OUT and their states, without touching them. */
export async function inspectShards(out: string): Promise<ShardsReport> {
  const dir = path.resolve(out);
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new SrfError('FILE_NOT_FOUND', 'no such output folder', { file: dir });
    throw error;
  }
  const found = names.map((name) => ({ name, shard: parseShardFolderName(name) })).filter((f) => f.shard !== null);
  const counts = [...new Set(found.map((f) => f.shard!.count))].sort((a, b) => a - b);
  if (counts.length === 0) {
    throw new SrfError('DATA_INVALID', `${dir} holds no shard-I-of-N folders (written by \`run --shard I/N --out ${out}\`); to join other run folders use merge --in A --in B --out DIR`, { file: dir });
  }
  if (counts.length > 1) {
    throw new SrfError('DATA_INVALID', `${dir} holds shards of runs split ${counts.join(' and ')} ways (${found.map((f) => f.name).join(', ')}); one split per folder: move the others away`, { file: dir });
  }
  const count = counts[0] as number;
  const report: ShardsReport = { count, complete: [], unfinished: [], missing: [] };
  for (let index = 0; index < count; index++) {
    const folder = path.join(dir, shardFolderName({ index, count }));
    const manifest = await readManifest(folder).catch(() => null);
    if (!manifest) {
      report.missing.push({ index, folder, status: 'missing' });
      continue;
    }
    if (manifest.inputs?.shard !== `${index}/${count}`) {
      throw new SrfError('DATA_INVALID', `${folder} holds the run of shard ${manifest.inputs?.shard ?? 'none'}, not ${index}/${count}`, { file: folder });
    }
    const state: ShardState = { index, folder, status: manifest.status };
    (manifest.status === 'complete' ? report.complete : report.unfinished).push(state);
  }
  return report;
}

/** One line per shard problem, for the log. */
export function describeShards(report: ShardsReport): string[] {
  const lines: string[] = [];
  if (report.missing.length > 0) lines.push(`missing (not started, or no run.json yet): ${report.missing.map((s) => s.index).join(', ')} of ${report.count}`);
  for (const s of report.unfinished) lines.push(`shard ${s.index}/${report.count} is ${s.status}: not joined (rerun its task; it resumes from its journal)`);
  return lines;
}

export async function mergeShards(options: MergeShardsOptions): Promise<MergeShardsSummary> {
  const log = options.onLog ?? (() => {});
  const shards = await inspectShards(options.out);
  if (shards.complete.length === 0) {
    throw new SrfError('DATA_INVALID', `none of the ${shards.count} shards in ${path.resolve(options.out)} is complete yet; ${describeShards(shards).join('; ')}`, { file: path.resolve(options.out) });
  }
  for (const line of describeShards(shards)) log('warn', line);
  const { into, out, ...rest } = options;
  const summary = await mergeRuns({ ...rest, inputs: shards.complete.map((s) => s.folder), out: into ?? out });
  for (const s of shards.complete) s.lines = summary.linesPerInput[s.folder] ?? 0;
  const allComplete = shards.complete.length === shards.count;
  // The merged run.json says which shards it holds, so a partial merge is never mistaken for the whole.
  summary.manifest.status = allComplete ? 'complete' : 'interrupted';
  summary.manifest.shards = {
    count: shards.count,
    joined: shards.complete.map((s) => s.index),
    unfinished: shards.unfinished.map((s) => ({ index: s.index, status: s.status })),
    missing: shards.missing.map((s) => s.index),
  };
  await writeManifest(summary.out, summary.manifest);
  return { ...summary, shards, allComplete };
}
