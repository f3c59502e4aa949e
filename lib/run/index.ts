/** The pipeline as a library: refine() and the pieces it is made of. */
export { refine, RefineRun, imageSeed } from './pipeline.js';
export type { RefineOptions, RefineProgress, RefineLog, RefinePhase, RefineSummary } from './pipeline.js';
export {
  IMAGE_EXTENSIONS,
  countInputs,
  formatShard,
  identifyImage,
  inShard,
  isImageFileName,
  parseShard,
  resolveInputSource,
  streamInputs,
} from './inputs.js';
export type { ImageIdentity, InputImage, InputKind, InputSource, ResolveInputOptions, Shard, StreamInputsOptions } from './inputs.js';
export { globToRegExp, hasGlobMagic, splitGlob } from './glob.js';
export { JOURNAL_FILE, Journal, isScoredLine, isTripletLine, readJournal } from './journal.js';
export type { JournalOptions, JournalReadOptions, LineStatus, TripletLine } from './journal.js';
export { LOCK_FILE, acquireOutputLock } from './lock.js';
export type { OutputLock } from './lock.js';
export { HASH_CACHE_FILE, MANIFEST_FILE, MANIFEST_FORMAT, fingerprintFile, readManifest, sha256File, writeManifest } from './manifest.js';
export type { FileFingerprint, OutputsRecord, RunCounts, RunManifest, RunStatus, ScoringRecord, SelectionRecord } from './manifest.js';
export { LEXICAL_WARNING, openScorer } from './scoring.js';
export type { Scorer, ScorerOptions } from './scoring.js';
export { MERGED_FILE, TRAIN_SCRIPT_FILE, countLine, emptyCounts, finalizeOutputs, loadTypeMix, mergedFileName, trainingId } from './finalize.js';
export type { FinalizeOptions, FinalizeResult } from './finalize.js';
export { REPORT_FILE, escapeHtml, writeReport } from './report.js';
export type { ReportOptions } from './report.js';
export { mergeRuns } from './merge.js';
export type { MergeOptions, MergeSummary } from './merge.js';
export { describeShards, inspectShards, mergeShards } from './merge-shards.js';
export type { MergeShardsOptions, MergeShardsSummary, ShardState, ShardsReport } from './merge-shards.js';
export { isAutoShard, parseShardFolderName, resolveShard, shardFolderName, shardOutputFolder } from './shard-env.js';
export type { ResolvedShard, ShardSource } from './shard-env.js';
export { reselectRun } from './reselect.js';
export type { ReselectOptions, ReselectSummary } from './reselect.js';
export { TASKS_DATA_FILE, TASKS_SUMMARY_FILE, buildTaskFile } from './tasks-file.js';
export type { TaskFileOptions, TaskFileSummary } from './tasks-file.js';
export { trainLoraScript } from './train-script.js';
export { checkImagePaths, resolveImageFolder } from './image-folder.js';
export type { ImageCheck, ImageFolderSource, ResolvedImageFolder } from './image-folder.js';
export { DATASET_INFO_FILE, LLAMAFACTORY_DATA_FILE, writeLlamaFactoryFiles } from './llamafactory.js';
export type { LlamaFactoryDataset } from './llamafactory.js';
export type { TrainScriptOptions } from './train-script.js';
export { DEMO_BROKEN_IMAGE, DEMO_IMAGE_COUNT, DEMO_SETTINGS, writeDemoAssets } from './demo.js';
export type { DemoAssets } from './demo.js';
export { readJsonArray, readLines, writeFileAtomic, writeJsonAtomic } from './files.js';
export type { FileLine } from './files.js';
export { toolVersion } from './version.js';
