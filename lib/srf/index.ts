/** The Self-Refinement Framework as pure TypeScript: prompts, parsing, data types, scoring, selection, step-1 data. */
export { formatBox, parseBox, parseBoxAnswer, type Box, type BoxOptions } from './box.js';
export {
  countSentences,
  countWords,
  DATA_TYPES,
  detectDataType,
  FORMAT_SUFFIXES,
  formatSuffixOf,
  isDataType,
  resolveDataTypeOptions,
  stripFormatSuffix,
  type DataType,
  type DataTypeOptions,
  type ResolvedDataTypeOptions,
} from './data-types.js';
export { readLlavaRecord, type LlavaRecord, type LlavaSample, type LlavaTurn, type QaTurn, type RecordPlace } from './llava-data.js';
export { bertScore, bertScoreF1, boxIoU, cosine, exactMatch, geometricMean, lexicalSimilarity, type BertScore } from './metrics.js';
export { normalizedWords, normalizeForExactMatch, normalizeText } from './normalize.js';
export { cleanReply, parseQaReply, QA_PARSE_FAILURES, type QaParseFailure, type QaParseResult } from './parse.js';
export {
  DEFAULT_DECODING,
  DEFAULT_TEMPLATES,
  IMAGE_TOKEN,
  LLAVA_SYSTEM,
  llavaPromptParts,
  QA_REPLY_GRAMMAR,
  qaReplyGrammar,
  renderLlavaPrompt,
  resolveTemplates,
  stripImageToken,
  templateStrings,
  templatesFromStrings,
  type LlavaPromptParts,
  type PromptTemplates,
  type PromptTemplateStrings,
  type QaReplyGrammarOptions,
  type TaskName,
} from './prompts.js';
export { createRandom, shuffled, type Random } from './random.js';
export { MEASURES_BY_TYPE, scoreTriplet, type ScoreOptions, type SimilarityMeasure, type Triplet, type TripletScore, type TypeMeasures } from './score.js';
export {
  matchTypeMix,
  PerTypeSelector,
  quotaFor,
  selectTopPerType,
  typeMixFromLlavaData,
  type MatchMixOptions,
  type MixMatchResult,
  type Rounding,
  type ScoredItem,
  type SelectionSummary,
  type SelectOptions,
  type TypeMix,
  type TypeMixMatch,
  type TypeMixOptions,
  type TypeSelection,
} from './select.js';
export {
  embeddingSimilarityProvider,
  lexicalSimilarityProvider,
  type EmbedFunction,
  type EmbeddingSimilarityOptions,
  type SimilarityProvider,
} from './similarity.js';
export {
  buildMultiTaskData,
  checkTaskRatios,
  DEFAULT_TASK_RATIOS,
  planTaskRatios,
  splitConversations,
  drawTask,
  TASK_NAMES,
  taskRecord,
  type MultiTaskData,
  type MultiTaskOptions,
  type MultiTaskRecord,
  type SingleTurn,
  type SkippedTurn,
  type SplitOptions,
  type SplitResult,
  type TaskPlan,
  type TaskRatios,
} from './tasks.js';
export { cutTruncatedAnswer, endOnSentence, truncationCause, type Truncation, type TruncationCause } from './truncation.js';
