/** Training-data emitters: LLaVA JSON, LLaMA-Factory ShareGPT, OpenAI-style chat JSONL. */
export { EMIT_FORMATS, EMITTERS, isEmitFormat, type EmitFormat, type EmitOptions, type EmitWriter, type Emitter } from './emitters.js';
export { assertLlavaDataset, toLlavaRecord, validateLlavaDataset, type LlavaEmitOptions, type LlavaTrainingRecord, type LlavaValidation } from './llava.js';
export {
  toOpenAiRecord,
  type OpenAiContentPart,
  type OpenAiEmitOptions,
  type OpenAiImageReference,
  type OpenAiMessage,
  type OpenAiRecord,
} from './openai.js';
export { RecordFileWriter, type RecordFileLayout, type RecordFileOptions } from './record-file.js';
export {
  relativeImagePath,
  sampleFromLlavaRecord,
  sampleFromTriplet,
  toTrainingSample,
  type FromLlavaOptions,
  type KeptTriplet,
  type SrfAnnotation,
  type TrainingSample,
} from './sample.js';
export { shareGptDatasetInfo, toShareGptRecord, type ShareGptEmitOptions, type ShareGptMessage, type ShareGptRecord } from './sharegpt.js';
