/**
 * LLaVA-1.5's prompt format (vicuna_v1): the system text, the `<image>` marker and how a user turn
 * wraps around the image. It is the model's format, not the method's: the engine builds every
 * request with it, and the training data carries the same marker.
 */
import { invalidArgument } from '../errors.js';

/** vicuna_v1 system text, as LLaVA-1.5 was trained with it. */
export const LLAVA_SYSTEM =
  "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

/** The image marker of LLaVA's data format (llama.cpp's own marker is swapped in by the engine). */
export const IMAGE_TOKEN = '<image>';

/** Text without its `<image>` markers, trimmed: what LLaVA's preprocessing does before it puts one back at the start. */
export function stripImageToken(text: string): string {
  if (typeof text !== 'string') throw invalidArgument('a string', 'text', text);
  return text.split(IMAGE_TOKEN).join('').trim();
}

export interface LlavaPromptParts {
  /** `{system} USER: ` — the engine puts the image embedding right after this. */
  beforeImage: string;
  /** `\n{text} ASSISTANT:` */
  afterImage: string;
}

/**
 * Splits the vicuna_v1 prompt `{system} USER: <image>\n{text} ASSISTANT:` around the image.
 * llama.cpp's `vicuna` chat template uses newlines instead of spaces, so we build the string ourselves.
 */
export function llavaPromptParts(userTextAfterImage: string): LlavaPromptParts {
  if (typeof userTextAfterImage !== 'string') throw invalidArgument('a string', 'userTextAfterImage', userTextAfterImage);
  return { beforeImage: `${LLAVA_SYSTEM} USER: `, afterImage: `\n${userTextAfterImage} ASSISTANT:` };
}

/** The whole prompt with LLaVA's `<image>` marker in place (for logs and tests). */
export function renderLlavaPrompt(userTextAfterImage: string): string {
  const { beforeImage, afterImage } = llavaPromptParts(userTextAfterImage);
  return `${beforeImage}${IMAGE_TOKEN}${afterImage}`;
}
