/**
 * srf-native's public API: what a Node tool embedding it needs, and only that (package.json's
 * `exports` map makes every other file internal; test/api/ snapshots this surface). The synthetic
 * world is its own entry point, `srf-native/world`.
 */

// Errors: one class, a stable code.
export { SrfError, isSrfError, ERROR_CODES } from './errors.js';
export type { SrfErrorCode, SrfErrorOptions } from './errors.js';

// The model: the engine and the method's three calls.
export { VisionModel } from './vision-model.js';
export type { VisionModelInfo, TaskCallOptions } from './vision-model.js';
export { Embedder } from './engine/embedder.js';
export { prepareImage } from './engine/image.js';
export { buildInfo } from './engine/native.js';
export type { BuildInfo, CudaReport, EngineStats } from './engine/native.js';
export type { GpuVerdict } from './engine/gpu-plan.js';
export type { DeviceSpec } from './engine/devices.js';
export type {
  Embedding,
  FinishReason,
  GenerateRequest,
  GenerateResult,
  ImageInput,
  ItemResult,
  KvLayout,
  LoraAdapterOptions,
  OpenEmbedderOptions,
  OpenVisionModelOptions,
  PreparedImage,
  ReplicaFailure,
  ReplicaStats,
  SamplingOptions,
} from './engine/types.js';
export type { QAPair, TextReply } from './srf/triangle.js';

// The commands as functions: refine (srf-native run) and what reads its output folder.
export { refine, RefineRun } from './jobs/refine.js';
export type { RefineOptions, RefineProgress, RefineLog, RefinePhase, RefineSummary } from './jobs/refine.js';
export { JOURNAL_FILE, isScoredLine, isTripletLine, readJournal } from './outputs/journal.js';
export type { JournalReadOptions, LineStatus, TripletLine } from './outputs/journal.js';
export { MANIFEST_FILE, readManifest } from './outputs/manifest.js';
export type { OutputsRecord, RunCounts, RunManifest, RunStatus, ScoringRecord, SelectionRecord, TrainerRecord } from './outputs/manifest.js';
export { MERGED_FILE, TRAIN_SCRIPT_FILE } from './outputs/finalize.js';
export { REPORT_FILE } from './outputs/report.js';
export { reselectRun } from './jobs/reselect.js';
export type { ReselectOptions, ReselectSummary } from './jobs/reselect.js';
export { mergeRuns } from './jobs/merge.js';
export type { MergeOptions, MergeSummary } from './jobs/merge.js';
export { inspectShards, mergeShards } from './jobs/merge-shards.js';
export type { MergeShardsOptions, MergeShardsSummary, ShardState, ShardsReport } from './jobs/merge-shards.js';
export { TASKS_DATA_FILE, buildTaskFile } from './jobs/tasks-file.js';
export type { TaskFileOptions, TaskFileSummary } from './jobs/tasks-file.js';
export { evaluate, scoreAnswersFile } from './jobs/eval/evaluate.js';
export type { EvaluateOptions, EvaluateResult, ScoreResult } from './jobs/eval/evaluate.js';
export { compareAnswersFiles } from './jobs/eval/compare.js';
export type { Comparison, PairedDifference } from './jobs/eval/compare.js';
export type { ScoreReport, ScoreSummary, ScoredAnswer } from './jobs/eval/score.js';

// The method, pure TypeScript: prompts, the reply grammar, parsing, data types, scoring, selection, step-1 data.
export { LLAVA_SYSTEM, renderLlavaPrompt } from './engine/llava-prompt.js';
export type { EnginePrompt, FamilyName, ModelFamily, VocabFacts } from './engine/families.js';
export type { PromptTextPart } from './engine/chat-template.js';
export { DEFAULT_DECODING, DEFAULT_TEMPLATES, QA_REPLY_GRAMMAR, qaReplyGrammar, templatesFromStrings } from './srf/prompts.js';
export type { PromptTemplates, PromptTemplateStrings, QaReplyGrammarOptions, TaskName } from './srf/prompts.js';
export { cleanReply, parseQaReply } from './srf/parse.js';
export type { QaParseFailure, QaParseResult } from './srf/parse.js';
export { DATA_TYPES, detectDataType, isDataType } from './srf/data-types.js';
export type { DataType, DataTypeOptions } from './srf/data-types.js';
export { MEASURES_BY_TYPE, scoreTriplet } from './srf/score.js';
export type { ChoiceComparison, ScoreOptions, SimilarityMeasure, Triplet, TripletScore, TypeMeasures } from './srf/score.js';
export { DEFAULT_FILTER, FILTERS } from './srf/filters.js';
export type { FilterName, FilterSettings } from './srf/filters.js';
export { parseChoiceQuestion, optionTextOf } from './srf/choices.js';
export type { ChoiceOption, ChoiceQuestion } from './srf/choices.js';
export { embeddingSimilarityProvider, lexicalSimilarityProvider } from './srf/similarity.js';
export type { EmbedFunction, EmbeddingSimilarityOptions, SimilarityProvider } from './srf/similarity.js';
export { PerTypeSelector, selectTopPerType } from './srf/select.js';
export type { Rounding, ScoredItem, SelectOptions, SelectionSummary, TypeMix, TypeSelection } from './srf/select.js';
export { DEFAULT_TASK_RATIOS, buildMultiTaskData } from './srf/tasks.js';
export type { MultiTaskData, MultiTaskOptions, MultiTaskRecord, TaskRatios } from './srf/tasks.js';
export type { LlavaRecord, LlavaSample, LlavaTurn } from './srf/llava-data.js';

// Training-data emitters: LLaVA JSON, LLaMA-Factory ShareGPT, OpenAI-style chat JSONL.
export { EMIT_FORMATS, EMITTERS, isEmitFormat } from './emit/emitters.js';
export type { EmitFormat, EmitOptions, EmitWriter, Emitter } from './emit/emitters.js';
export { assertLlavaDataset, toLlavaRecord, validateLlavaDataset } from './emit/llava.js';
export type { LlavaEmitOptions, LlavaTrainingRecord, LlavaValidation } from './emit/llava.js';
export { toOpenAiRecord } from './emit/openai.js';
export type { OpenAiContentPart, OpenAiEmitOptions, OpenAiImageReference, OpenAiMessage, OpenAiRecord } from './emit/openai.js';
export { shareGptDatasetInfo, toShareGptRecord } from './emit/sharegpt.js';
export type { ShareGptEmitOptions, ShareGptMessage, ShareGptRecord } from './emit/sharegpt.js';
export { sampleFromLlavaRecord, sampleFromTriplet, toTrainingSample } from './emit/sample.js';
export type { FromLlavaOptions, KeptTriplet, SrfAnnotation, TrainingSample } from './emit/sample.js';
