/**
 * `srf-native info --model TEXT.gguf --mmproj MMPROJ.gguf`: what the engine makes of a GGUF pair,
 * its family above all (engine/families.ts), loaded with the smallest engine so that the vocabulary's
 * end tokens and mtmd's image-token counts are the loaded model's own, not guesses.
 */
import { describeFamily } from '../engine/families.js';
import { VisionModel } from '../vision-model.js';

export interface ModelInfoArgs {
  model: string;
  mmproj: string;
  chatTemplate?: string | undefined;
}

/** The pair's facts, as lines for people and as an object for --json. */
export async function modelInfo(args: ModelInfoArgs): Promise<{ lines: string[]; json: Record<string, unknown> }> {
  await using model = await VisionModel.open({
    model: args.model,
    mmproj: args.mmproj,
    parallel: 1,
    prefixCache: 1,
    threads: 1,
    ...(args.chatTemplate !== undefined ? { chatTemplate: args.chatTemplate } : {}),
  });
  const f = model.info.family;
  const json = {
    family: f.name,
    label: f.label,
    projector: f.projector,
    templateSource: f.templateSource,
    images: f.images,
    imageTokens: f.imageTokens,
    endTokens: f.endTokens,
    trainerFormat: f.trainerFormat,
    llamaFactoryTemplate: f.llamaFactoryTemplate ?? null,
    prompt: f.renderPrompt('{question}'),
    description: model.info.description,
  };
  const lines = [
    `model:          ${model.info.description} (${model.info.files.text.arch}, ${model.info.layers} layers, ${model.info.embeddingLength} wide)`,
    `family:         ${describeFamily(f)}`,
    `prompt:         ${JSON.stringify(json.prompt)}`,
  ];
  return { lines, json };
}
