/**
 * `srf-native merge`: joins the journals of shard runs (`--shard I/N` on N machines) into one output
 * folder, one line per id (the first folder named wins a duplicate), then selects over the union and
 * writes every output as a run would. The shards must share the image root and the round.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SrfError, invalidArgument } from '../errors.js';
import type { EmitFormat } from '../emit/emitters.js';
import { RecordFileWriter } from '../emit/record-file.js';
import { DEFAULT_KEEP_TOP } from '../srf/select.js';
import { finalizeOutputs, type FinalizeResult, type SelectionSettings } from '../outputs/finalize.js';
import { JOURNAL_FILE, readJournal } from '../outputs/journal.js';
import { acquireOutputLock } from '../outputs/lock.js';
import { MANIFEST_FORMAT, readManifest, recordedTrainer, writeManifest, type RunManifest } from '../outputs/manifest.js';
import { toolVersion } from '../outputs/version.js';

export interface MergeOptions extends SelectionSettings {
  /** Output folders of the runs to join. */
  inputs: string[];
  out: string;
  report?: boolean;
  command?: string[];
  onLog?: (level: 'info' | 'warn', message: string) => void;
}

export interface MergeSummary extends FinalizeResult {
  out: string;
  /** Lines read per input folder. */
  linesPerInput: Record<string, number>;
  duplicates: number;
  manifest: RunManifest;
}

/** The filter a folder was judged with (run.json; folders made before there was a choice used the paper's). */
const filterOf = (manifest: RunManifest): string => manifest.filter?.name ?? 'paper';

export async function mergeRuns(options: MergeOptions): Promise<MergeSummary> {
  if (!Array.isArray(options.inputs) || options.inputs.length === 0) throw invalidArgument('at least one --in folder', 'inputs', options.inputs);
  const log = options.onLog ?? (() => {});
  const out = path.resolve(options.out);
  const inputs = options.inputs.map((dir) => path.resolve(dir));
  if (inputs.includes(out)) throw invalidArgument('an --out folder that is not one of the --in folders', 'out', options.out);
  const manifests: RunManifest[] = [];
  for (const dir of inputs) {
    const manifest = await readManifest(dir);
    if (!manifest) throw new SrfError('FILE_NOT_FOUND', 'not an srf-native output folder (no run.json)', { file: dir });
    manifests.push(manifest);
  }
  const first = manifests[0] as RunManifest;
  // The shards' family (run.json, older ones included): the merged data trains the same way.
  const trainer = recordedTrainer(first);
  for (const [i, manifest] of manifests.entries()) {
    if (manifest.imageRoot !== first.imageRoot) {
      throw new SrfError('DATA_INVALID', `${inputs[i]} has image root ${manifest.imageRoot} but ${inputs[0]} has ${first.imageRoot}; shards must share one image root`);
    }
    if (manifest.round !== first.round) {
      throw new SrfError('DATA_INVALID', `${inputs[i]} is round ${manifest.round} but ${inputs[0]} is round ${first.round}; merge one round at a time`);
    }
    const family = recordedTrainer(manifest).family;
    if (family !== trainer.family) {
      throw new SrfError('DATA_INVALID', `${inputs[i]} was made with a ${family} model but ${inputs[0]} with a ${trainer.family} one; their training data cannot be merged`);
    }
    // Filters rank by different scores (S, S x agreement, S x confidence): one selection over both would be unfair to one.
    if (filterOf(manifest) !== filterOf(first)) {
      throw new SrfError('DATA_INVALID', `${inputs[i]} was judged with --filter ${filterOf(manifest)} but ${inputs[0]} with --filter ${filterOf(first)}; their scores do not rank alike: judge one again with \`srf-native run --rescore\` and that filter`);
    }
    if (manifest.status !== 'complete') log('warn', `${inputs[i]}: its run is ${manifest.status}; merging what it has`);
  }
  const identities = new Set(manifests.map((m) => m.identity?.hash ?? 'none'));
  if (identities.size > 1) log('warn', 'the folders were made with different models or settings; their scores may not be comparable');

  await mkdir(out, { recursive: true });
  const lock = await acquireOutputLock(out, (options.command ?? []).join(' '));
  try {
    const journal = path.join(out, JOURNAL_FILE);
    const merged = await RecordFileWriter.open(journal, 'jsonl', { overwrite: true });
    const seen = new Set<string>();
    const linesPerInput: Record<string, number> = {};
    let duplicates = 0;
    try {
      for (const dir of inputs) {
        let count = 0;
        for await (const line of readJournal(path.join(dir, JOURNAL_FILE))) {
          count++;
          if (seen.has(line.id)) {
            duplicates++;
            continue;
          }
          seen.add(line.id);
          delete line.kept;
          await merged.write(line);
        }
        linesPerInput[dir] = count;
      }
      await merged.close();
    } catch (error) {
      await merged.abort();
      throw error;
    }
    if (duplicates > 0) log('warn', `${duplicates} ids appeared in more than one folder; the first folder's line was kept`);

    const manifest: RunManifest = {
      format: MANIFEST_FORMAT,
      tool: { name: 'srf-native', version: toolVersion() },
      status: 'complete',
      command: options.command ?? [],
      round: first.round,
      imageRoot: first.imageRoot,
      imagePaths: first.imagePaths,
      inputs: { merged: inputs, shards: manifests.map((m) => m.inputs?.shard ?? null) },
      models: first.models,
      generation: first.generation,
      scoring: first.scoring ? { ...first.scoring, paperFaithful: manifests.every((m) => m.scoring?.paperFaithful === true) } : null,
      selection: null,
      counts: null,
      timings: {},
      outputs: { journal: JOURNAL_FILE, train: {} },
    };
    if (identities.size === 1 && first.identity) manifest.identity = first.identity;
    // The runs' score floor (their filter's) applies to the union too.
    const minScore = (first.selectionSettings as { minScore?: number | null } | undefined)?.minScore ?? undefined;
    if (first.filter !== undefined) manifest.filter = first.filter;
    const started = Date.now();
    const result = await finalizeOutputs({
      out,
      imageRoot: first.imageRoot,
      keepTop: options.keepTop ?? DEFAULT_KEEP_TOP,
      ...(minScore !== undefined ? { minScore } : {}),
      matchMix: options.matchMix,
      formats: options.formats ?? [],
      mergeWith: options.mergeWith,
      mergeImageFolder: options.mergeImageFolder,
      report: options.report ?? true,
      round: first.round,
      trainer,
      onLog: log,
      beforeReport: async (finalized) => {
        manifest.selection = finalized.selection;
        manifest.counts = finalized.counts;
        manifest.outputs = finalized.outputs;
        manifest.selectionSettings = {
          keepTop: options.keepTop ?? DEFAULT_KEEP_TOP,
          minScore: minScore ?? null,
          matchMix: options.matchMix ? path.resolve(options.matchMix) : null,
          formats: ['llava', ...(options.formats ?? []).filter((f) => f !== 'llava')],
          mergeWith: options.mergeWith ? path.resolve(options.mergeWith) : null,
          mergeImageFolder: options.mergeImageFolder ? path.resolve(options.mergeImageFolder) : null,
        };
        manifest.timings = { finishedAt: new Date().toISOString(), seconds: (Date.now() - started) / 1000 };
        await writeManifest(out, manifest);
      },
    });
    return { ...result, out, linesPerInput, duplicates, manifest };
  } finally {
    await lock.release();
  }
}
