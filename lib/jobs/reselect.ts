/**
 * `srf-native select`: selection again over an output folder's scored triplets, with another
 * `--keep-top`, type mix or formats, without generating anything. Settings not given are the ones the
 * folder was last selected with (run.json `selectionSettings`).
 */
import path from 'node:path';
import { SrfError } from '../errors.js';
import type { EmitFormat } from '../emit/emitters.js';
import { DEFAULT_KEEP_TOP } from '../srf/select.js';
import { finalizeOutputs, type FinalizeOptions, type FinalizeResult } from '../outputs/finalize.js';
import { acquireOutputLock } from '../outputs/lock.js';
import { readManifest, recordedTrainer, writeManifest, type RunManifest } from '../outputs/manifest.js';

/** A selection's settings as run.json records them (SelectionSettings, where null is "switched off"). */
interface RecordedSelection {
  keepTop?: number;
  /** The score floor; null for none. */
  minScore?: number | null;
  /** A file, or null to switch a previous --match-mix off. */
  matchMix?: string | null;
  formats?: EmitFormat[];
  mergeWith?: string | null;
  mergeImageFolder?: string | null;
  openaiImages?: FinalizeOptions['openaiImages'] | null;
}

export interface ReselectOptions extends RecordedSelection {
  out: string;
  report?: boolean;
  command?: string[];
  onLog?: (level: 'info' | 'warn', message: string) => void;
}

export interface ReselectSummary extends FinalizeResult {
  out: string;
  /** Kept before this selection. */
  previousKept: number | null;
  manifest: RunManifest;
}

export async function reselectRun(options: ReselectOptions): Promise<ReselectSummary> {
  const out = path.resolve(options.out);
  const manifest = await readManifest(out);
  if (!manifest) throw new SrfError('FILE_NOT_FOUND', 'not an srf-native output folder (no run.json)', { file: out });
  const lock = await acquireOutputLock(out, (options.command ?? []).join(' '));
  try {
    const previous = (manifest.selectionSettings ?? {}) as RecordedSelection;
    const pick = <K extends keyof RecordedSelection>(key: K): RecordedSelection[K] => (options[key] !== undefined ? options[key] : previous[key]);
    const settings: Required<RecordedSelection> = {
      keepTop: pick('keepTop') ?? DEFAULT_KEEP_TOP,
      minScore: pick('minScore') ?? null,
      matchMix: pick('matchMix') ?? null,
      formats: pick('formats') ?? ['llava'],
      mergeWith: pick('mergeWith') ?? null,
      mergeImageFolder: pick('mergeImageFolder') ?? null,
      openaiImages: pick('openaiImages') ?? null,
    };
    const previousKept = manifest.counts?.kept ?? null;
    const result = await finalizeOutputs({
      out,
      imageRoot: manifest.imageRoot,
      keepTop: settings.keepTop,
      ...(settings.minScore !== null ? { minScore: settings.minScore } : {}),
      matchMix: settings.matchMix ?? undefined,
      formats: settings.formats,
      mergeWith: settings.mergeWith ?? undefined,
      mergeImageFolder: settings.mergeImageFolder ?? undefined,
      openaiImages: settings.openaiImages ?? undefined,
      report: options.report ?? true,
      round: manifest.round,
      // The family the run's model was (run.json, older ones included): a re-selection trains the same way.
      trainer: recordedTrainer(manifest),
      ...(options.onLog ? { onLog: options.onLog } : {}),
      beforeReport: async (finalized) => {
        manifest.selection = finalized.selection;
        manifest.counts = finalized.counts;
        manifest.outputs = { ...finalized.outputs, ...(manifest.outputs?.report && !finalized.outputs.report ? { report: manifest.outputs.report } : {}) };
        manifest.selectionSettings = {
          ...settings,
          matchMix: settings.matchMix ? path.resolve(settings.matchMix) : null,
          mergeWith: settings.mergeWith ? path.resolve(settings.mergeWith) : null,
          mergeImageFolder: settings.mergeImageFolder ? path.resolve(settings.mergeImageFolder) : null,
        };
        manifest.lastSelection = { at: new Date().toISOString(), command: options.command ?? [] };
        await writeManifest(out, manifest);
      },
    });
    return { ...result, out, previousKept, manifest };
  } finally {
    await lock.release();
  }
}
