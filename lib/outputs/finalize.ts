/**
 * The end of a run (and all of `select`, `merge`): selection over the whole journal, then every
 * output made from it.
 *
 *  1. Read triplets.jsonl once: counts, and (id, type, score) of each scored line into the per-type
 *     selector (top `keepTop` per type, lib/srf/select.ts).
 *  2. Optional second pass: resample the kept set to a reference type mix (`matchMix`).
 *  3. Read it again: rewrite triplets.jsonl with `kept` filled in (temp file + rename, so the journal
 *     is whole at every moment), and write the kept triplets to train.llava.json and the other formats
 *     (and after the original records to train.merged.* in the same formats); without original data,
 *     a warning: step 3 would train on synthetic data only.
 *  4. The data train-lora.sh gets, its image paths checked under the folder it passes; LLaMA-Factory's
 *     dataset_info.json with ShareGPT; train-lora.sh and report.html.
 *
 * Decision: the `kept` flags live in triplets.jsonl itself (rewritten atomically here), so one file
 * tells the whole story of every image; selection.json is not needed. While a run appends, lines carry
 * no `kept`; resume ignores the flag.
 */
import { chmod, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { SrfError, invalidArgument } from '../errors.js';
import { EMITTERS, droppedWarning, type EmitFormat, type EmitWriter } from '../emit/emitters.js';
import { DEFAULT_OPENAI_IMAGES, type OpenAiImages } from '../emit/openai.js';
import { RecordFileWriter } from '../emit/record-file.js';
import { sampleFromLlavaRecord, type KeptTriplet } from '../emit/sample.js';
import { DATA_TYPES, isDataType, type DataType } from '../srf/data-types.js';
import { DEFAULT_KEEP_TOP, matchTypeMix, PerTypeSelector, typeMixFromLlavaData, type ScoredItem, type TypeMix } from '../srf/select.js';
import { readJsonArray, writeFileAtomic } from '../util/files.js';
import { checkImagePaths, imageCheckWarning, resolveImageFolder } from './image-folder.js';
import { JOURNAL_FILE, isScoredLine, readJournal, type TripletLine } from './journal.js';
import { DATASET_INFO_FILE, LLAMAFACTORY_DATA_FILE, writeLlamaFactoryFiles } from './llamafactory.js';
import type { OutputsRecord, RunCounts, SelectionRecord, TrainerRecord } from './manifest.js';
import { REPORT_FILE, writeReport } from './report.js';
import { trainLoraScript } from './train-script.js';

export const MERGED_FILE = 'train.merged.llava.json'; // mergedFileName('llava')
export const TRAIN_SCRIPT_FILE = 'train-lora.sh';

/** The selection settings run, select and merge take alike (run.json records them). */
export interface SelectionSettings {
  /** Fraction kept per type. Default 0.2 (DEFAULT_KEEP_TOP). */
  keepTop?: number;
  /** Not kept below this score, whatever the type's quota (the refined filter's floor). Default none. */
  minScore?: number;
  /** A LLaVA JSON file whose type mix the kept set is resampled to, or a JSON object of type weights. */
  matchMix?: string;
  /** Formats besides LLaVA (which is always written). */
  formats?: EmitFormat[];
  /** Original instruction data (LLaVA JSON): also write train.merged.llava.json = original + kept. */
  mergeWith?: string;
  /** The folder the original data's image paths are relative to (default: image-folder.ts's rule). */
  mergeImageFolder?: string;
}

export interface FinalizeOptions extends Omit<SelectionSettings, 'formats'> {
  out: string;
  /** Absolute; journal image paths are relative to it. */
  imageRoot: string;
  formats?: readonly EmitFormat[];
  /** How train.openai.jsonl references images. Default base64 data URLs (what fine-tuning services take). */
  openaiImages?: OpenAiImages | undefined;
  /** Write report.html. Default true. */
  report?: boolean;
  /**
   * Called once the data files are written and before the report: the place to update run.json, which
   * the report reads (selection thresholds, scoring).
   */
  beforeReport?: (result: FinalizeResult) => Promise<void>;
  /** Round for the train script when the journal is empty. */
  round?: number;
  /**
   * The model family's trainer: with format 'sharegpt' ShareGPT is written whatever `formats` says;
   * train-lora.sh (LLaVA-1.5's training code) is written where its `trainScript` says. Default: LLaVA-1.5's.
   */
  trainer?: TrainerRecord;
  onLog?: (level: 'info' | 'warn', message: string) => void;
}

export interface FinalizeResult {
  counts: RunCounts;
  selection: SelectionRecord;
  outputs: OutputsRecord;
  round: number;
  /** Whether every scored line used the paper's measures. */
  paperFaithful: boolean;
  seconds: number;
}

function emptyByType<T>(make: () => T): Record<DataType, T> {
  return Object.fromEntries(DATA_TYPES.map((t) => [t, make()])) as Record<DataType, T>;
}

export function emptyCounts(): RunCounts {
  return {
    images: 0,
    scored: 0,
    rejected: 0,
    errors: 0,
    kept: 0,
    byType: emptyByType(() => ({ total: 0, kept: 0 })),
    rejectedByReason: {},
    errorsByCode: {},
  };
}

/** Adds one journal line to running counts (kept is counted only when set). */
export function countLine(counts: RunCounts, line: TripletLine): void {
  counts.images++;
  if (isScoredLine(line)) {
    counts.scored++;
    if (isDataType(line.type)) {
      counts.byType[line.type].total++;
      if (line.kept) counts.byType[line.type].kept++;
    }
    if (line.kept) counts.kept++;
  } else if (line.status === 'rejected') {
    counts.rejected++;
    const reason = line.rejected ?? 'unknown';
    counts.rejectedByReason[reason] = (counts.rejectedByReason[reason] ?? 0) + 1;
  } else {
    counts.errors++;
    const code = line.error?.code ?? 'UNKNOWN';
    counts.errorsByCode[code] = (counts.errorsByCode[code] ?? 0) + 1;
  }
}

const MIX_CHUNK = 10_000;

/**
 * The target type mix of `--match-mix`: a LLaVA JSON list (its type mix by lib/srf/select.ts, read in
 * chunks so a 1 GB file streams), or a JSON object of weights per type ({"short_answer": 0.4, ...},
 * or {"fractions": {...}}).
 */
export async function loadTypeMix(file: string): Promise<Record<DataType, number>> {
  const handle = await open(file, 'r').catch((cause) => {
    throw new SrfError('FILE_NOT_FOUND', 'cannot open the --match-mix file', { file, cause });
  });
  const head = Buffer.alloc(64);
  const { bytesRead } = await handle.read(head, 0, 64, 0);
  await handle.close();
  const first = head.subarray(0, bytesRead).toString('utf8').replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '{') {
    let value: unknown;
    try {
      value = JSON.parse(await readFile(file, 'utf8'));
    } catch (cause) {
      throw new SrfError('DATA_INVALID', `not valid JSON: ${(cause as Error).message}`, { file, cause });
    }
    const weights = (value as { fractions?: unknown }).fractions ?? value;
    const out = emptyByType(() => 0);
    for (const [type, weight] of Object.entries(weights as Record<string, unknown>)) {
      if (!isDataType(type) || typeof weight !== 'number' || !(weight >= 0)) {
        throw new SrfError('DATA_INVALID', `expected weights per data type (${DATA_TYPES.join(', ')}), found ${JSON.stringify(type)}: ${JSON.stringify(weight)}`, { file });
      }
      out[type] = weight;
    }
    return out;
  }
  // typeMixFromLlavaData takes a synchronous list; feed it chunks and add the counts up.
  const counts = emptyByType(() => 0);
  let total = 0;
  let chunk: unknown[] = [];
  const flush = () => {
    const mix: TypeMix = typeMixFromLlavaData(chunk, { file });
    for (const type of DATA_TYPES) counts[type] += mix.counts[type];
    total += mix.total;
    chunk = [];
  };
  for await (const record of readJsonArray(file)) {
    chunk.push(record);
    if (chunk.length >= MIX_CHUNK) flush();
  }
  flush();
  if (total === 0) throw new SrfError('DATA_INVALID', 'no image records to take a type mix from', { file });
  const fractions = emptyByType(() => 0);
  for (const type of DATA_TYPES) fractions[type] = counts[type] / total;
  return fractions;
}

/** train.merged.<format's extension>: train.merged.llava.json, train.merged.sharegpt.json, train.merged.openai.jsonl. */
export function mergedFileName(format: EmitFormat): string {
  return EMITTERS[format].fileName.replace(/^train\./, 'train.merged.');
}

/** Deepest folder holding both paths. */
function commonFolder(a: string, b: string): string {
  const left = path.resolve(a).split(path.sep);
  const right = path.resolve(b).split(path.sep);
  let i = 0;
  while (i < left.length && i < right.length && left[i] === right[i]) i++;
  return left.slice(0, i).join(path.sep) || path.sep;
}

/** The id a kept triplet carries in training data: round-prefixed, so rounds never collide in a merged set. */
export function trainingId(line: TripletLine): string {
  return `srf-r${line.round}-${line.id}`;
}

function keptTriplet(line: TripletLine, image: string): KeptTriplet {
  return {
    id: trainingId(line),
    image,
    question: line.question as string,
    answer: line.answer as string,
    questionPrime: line.questionPrime ?? '',
    answerPrime: line.answerPrime ?? '',
    type: line.type as DataType,
    simQ: line.simQ as number,
    simA: line.simA as number,
    score: line.score as number,
    paperFaithful: line.paperFaithful === true,
    round: line.round,
  };
}

export async function finalizeOutputs(options: FinalizeOptions): Promise<FinalizeResult> {
  const started = Date.now();
  const out = path.resolve(options.out);
  const imageRoot = path.resolve(options.imageRoot);
  const keepTop = options.keepTop ?? DEFAULT_KEEP_TOP;
  const log = options.onLog ?? (() => {});
  const formats: EmitFormat[] = ['llava', ...(options.formats ?? []).filter((f) => f !== 'llava')];
  const llavaTrainer = (options.trainer?.format ?? 'llava') === 'llava';
  if (!llavaTrainer && !formats.includes('sharegpt')) formats.push('sharegpt');
  // train-lora.sh is LLaVA-1.5's recipe (its base checkpoint and projector), a trait of the family.
  const llavaScript = options.trainer?.trainScript ?? true;
  for (const format of formats) if (!EMITTERS[format]) throw invalidArgument('llava, sharegpt or openai', 'format', format);
  const journalFile = path.join(out, JOURNAL_FILE);

  // 1. selection by type
  const minScore = options.minScore;
  const selector = new PerTypeSelector({ keepTop, ...(minScore !== undefined ? { minScore } : {}) });
  let round = options.round;
  let paperFaithful = true;
  let lineNumber = 0;
  for await (const line of readJournal(journalFile)) {
    lineNumber++;
    round ??= line.round;
    if (isScoredLine(line)) {
      selector.add({ id: line.id, type: line.type, score: line.score, floorScore: line.consistency }, `${journalFile} line ${lineNumber}`);
      if (line.paperFaithful === false) paperFaithful = false;
    }
  }
  const summary = selector.finish();
  const short = underFilledTypes(summary.byType);
  if (short.length > 0) {
    log('info', `quota not filled (too few triplets with ${minScore !== undefined ? `S >= ${minScore}, the score floor` : 'S > 0'}): ${short.map((t) => `${t} ${summary.byType[t].kept} of ${summary.byType[t].quota}`).join(', ')}`);
  }
  let keptIds: ReadonlySet<string> = summary.keptIds;
  const selection: SelectionRecord = {
    keepTop,
    rounding: 'ceil',
    keepZeroScores: false,
    matchMix: null,
    policy: `top ${+(keepTop * 100).toFixed(4)} % by score within each data type (rounded up; S = 0 never kept${minScore !== undefined ? `; only at S >= ${minScore}` : ''})`,
    minScore: minScore ?? null,
    underFilled: short,
    byType: summary.byType,
    keptTopFraction: summary.keptCount,
    kept: summary.keptCount,
  };

  // 2. optional type-mix pass
  if (options.matchMix) {
    const target = await loadTypeMix(options.matchMix);
    const keptItems: ScoredItem[] = [];
    for await (const line of readJournal(journalFile)) {
      if (isScoredLine(line) && keptIds.has(line.id)) keptItems.push({ id: line.id, type: line.type, score: line.score });
    }
    const matched = matchTypeMix(keptItems, target);
    keptIds = new Set(matched.kept.map((item) => item.id));
    selection.matchMix = path.resolve(options.matchMix);
    selection.targetMix = target;
    selection.kept = keptIds.size;
    selection.policy += `, then resampled (highest scores first) to the type mix of ${path.basename(options.matchMix)}`;
    if (matched.missingTypes.length > 0) log('warn', `--match-mix: no kept triplets of type ${matched.missingTypes.join(', ')}; the target mix was renormalised without them`);
  }

  // 3. rewrite the journal with `kept`, and emit
  const counts = emptyCounts();
  const outputs: OutputsRecord = { journal: JOURNAL_FILE, train: {} };
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    log('warn', message);
  };
  const emitOptions = { overwrite: true, ...(options.openaiImages ?? DEFAULT_OPENAI_IMAGES) };
  // The journal is rewritten with each line's `kept`, beside the one being read, and replaces it whole.
  const journalOut = await RecordFileWriter.open(journalFile, 'jsonl', { overwrite: true });
  const writers: EmitWriter[] = [];
  const mergedWriters: EmitWriter[] = [];
  let mergedRoot = imageRoot;
  try {
    for (const format of formats) {
      writers.push(await EMITTERS[format].open(out, { ...emitOptions, imageRoot }));
      outputs.train[format] = EMITTERS[format].fileName;
    }
    if (options.mergeWith) {
      // One rule for the original data's image folder (image-folder.ts), the same as `tasks`; both
      // folders are re-based onto their common folder, which the train script passes.
      const source = await resolveImageFolder(options.mergeWith, options.mergeImageFolder);
      if (source.from !== 'given') log('info', `--merge-with: image paths taken relative to ${source.folder} (${source.from === 'recorded' ? 'recorded when srf-native wrote it' : "the data file's folder"}; --merge-image-folder to change)`);
      mergedRoot = commonFolder(imageRoot, source.folder);
      outputs.mergedFormats = {};
      for (const format of formats) {
        const fileName = mergedFileName(format);
        mergedWriters.push(await EMITTERS[format].open(out, { ...emitOptions, imageRoot: mergedRoot, fileName }));
        outputs.mergedFormats[format] = fileName;
      }
      let index = 0;
      for await (const record of readJsonArray(path.resolve(options.mergeWith))) {
        const place = { index: index++, file: options.mergeWith };
        const sample = sampleFromLlavaRecord(record, place, { imageFolder: source.folder });
        for (const writer of mergedWriters) await writer.write(sample);
      }
      log('info', `--merge-with: ${index} original records`);
    } else {
      warn(
        `step 3 has no original data: ${llavaScript ? 'train.llava.json and train-lora.sh hold' : 'the training data holds'} the kept synthetic triplets only. ` +
          'The method trains on the original instruction data + the kept triplets: pass --merge-with ORIGINAL.json (and --merge-image-folder if its images are not beside it).',
      );
    }
    for await (const line of readJournal(journalFile)) {
      if (isScoredLine(line)) {
        line.kept = keptIds.has(line.id);
        if (line.kept) {
          const kept = keptTriplet(line, line.image);
          for (const writer of writers) await writer.write(kept);
          const rebased = mergedRoot === imageRoot ? kept : keptTriplet(line, path.resolve(imageRoot, line.image));
          for (const writer of mergedWriters) await writer.write(rebased);
        }
      } else {
        line.kept = false;
      }
      countLine(counts, line);
      await journalOut.write(line);
    }
    await journalOut.close();
    for (const writer of [...writers, ...mergedWriters]) {
      await writer.close();
      const dropped = droppedWarning(writer);
      if (dropped) {
        (outputs.dropped ??= {})[path.basename(writer.path)] = writer.dropped;
        warn(dropped);
      }
    }
    if (options.mergeWith) {
      outputs.merged = MERGED_FILE;
      outputs.mergedImageRoot = mergedRoot;
    }
  } catch (error) {
    await journalOut.abort();
    for (const writer of [...writers, ...mergedWriters]) await writer.abort().catch(() => {});
    throw error;
  }

  // 4. the data the train script gets, checked; LLaMA-Factory's files; train script and report
  const trainData = path.join(out, outputs.merged ?? (outputs.train.llava as string));
  const trainImages = outputs.merged ? mergedRoot : imageRoot;
  const check = await checkImagePaths(trainData, trainImages);
  outputs.imageChecks = { [path.basename(trainData)]: check };
  const missing = imageCheckWarning(path.basename(trainData), check);
  if (missing) warn(missing);
  if (outputs.train.sharegpt) {
    const k = round ?? 0;
    const datasets = [{ name: `srf_round${k}_kept`, fileName: outputs.train.sharegpt, mediaDir: imageRoot }];
    if (outputs.mergedFormats?.sharegpt) datasets.unshift({ name: `srf_round${k}_merged`, fileName: outputs.mergedFormats.sharegpt, mediaDir: mergedRoot });
    await writeLlamaFactoryFiles(out, datasets);
    outputs.llamaFactory = { datasetInfo: DATASET_INFO_FILE, dataArguments: LLAMAFACTORY_DATA_FILE };
  }
  if (warnings.length > 0) outputs.warnings = warnings;
  if (options.trainer) outputs.trainer = options.trainer;
  if (llavaScript) {
    const scriptFile = path.join(out, TRAIN_SCRIPT_FILE);
    await writeFileAtomic(
      scriptFile,
      trainLoraScript({ purpose: 'refine', data: trainData, imageFolder: trainImages, round: round ?? 0, syntheticOnly: !outputs.merged }),
    );
    await chmod(scriptFile, 0o755);
    outputs.trainScript = TRAIN_SCRIPT_FILE;
  }
  const withReport = options.report ?? true;
  if (withReport) outputs.report = REPORT_FILE;
  const result: FinalizeResult = { counts, selection, outputs, round: round ?? 0, paperFaithful, seconds: (Date.now() - started) / 1000 };
  await options.beforeReport?.(result);
  if (withReport) await writeReport(out);
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/** The types whose quota the selection could not fill (the floor, or S = 0, stopped it first). */
export function underFilledTypes(byType: SelectionRecord['byType']): DataType[] {
  return (Object.keys(byType) as DataType[]).filter((type) => byType[type].kept < byType[type].quota);
}
