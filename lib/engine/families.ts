/**
 * Model families: what differs between LLaVA-1.5, Qwen2.5-VL, SmolVLM, Gemma 3 and the others, in
 * one object resolved once from the GGUF pair (the projector type, the text architecture, the chat
 * template) and passed down: the prompt format, how images reach mtmd, the image-token limits, the
 * end-of-turn tokens and the trainer format. Nothing else asks which family a model is.
 */
import { readFile, stat } from 'node:fs/promises';
import { SrfError, invalidArgument } from '../errors.js';
import type { VisionModelFileInfo } from '../gguf/check.js';
import { CHATML_TEMPLATE, ChatTemplate, type PromptTextPart, type TemplateTokens } from './chat-template.js';
import { llavaPromptParts, renderLlavaPrompt } from './llava-prompt.js';

export type FamilyName = 'llava-1.5' | 'llava-1.6' | 'mobilevlm' | 'qwen2-vl' | 'qwen2.5-vl' | 'qwen3-vl' | 'smolvlm' | 'gemma3' | 'other';

/** A prompt as the engine takes it: the text before the image (the shared prefix) and after it. */
export interface EnginePrompt {
  beforeImage: string;
  /** The text after the image, whole (tokenized as text when `afterImageParts` is absent). */
  afterImage: string;
  /** A chat template's text after the image: template parts (special tokens parsed) and the user's text. */
  afterImageParts?: PromptTextPart[];
}

/** The vocabulary's facts, as the loaded model reports them. */
export interface VocabFacts {
  addBos: boolean;
  bos: { id: number; text: string };
  eos: { id: number; text: string };
  eot: { id: number; text: string };
}

export interface ModelFamily {
  readonly name: FamilyName;
  /** For people: "Qwen2.5-VL". */
  readonly label: string;
  /** clip.projector_type. */
  readonly projector: string;
  /** 'pad-square': padded to a square of the encoder's size, as LLaVA-1.5 trained; 'native': the image's own size, mtmd preprocesses. */
  readonly images: 'pad-square' | 'native';
  /** Where the prompt format comes from, for people ("vicuna_v1 (LLaVA-1.5)", "the GGUF's tokenizer.chat_template"). */
  readonly templateSource: string;
  /** The tokens that end a reply (EOS, and EOT where the vocabulary has one), as text. */
  readonly endTokens: readonly string[];
  /** The token the model ends a reply with (the one a text draft ends with): EOT or EOS, whichever the template writes after a reply. */
  readonly replyEndToken: number;
  /** Image tokens per image: [min, max] where the family's count depends on the image, else one count. */
  readonly imageTokens: readonly [number, number];
  /** The training-data format its trainer reads: LLaVA's JSON, or LLaMA-Factory's ShareGPT. */
  readonly trainerFormat: 'llava' | 'sharegpt';
  /** Whether `train-lora.sh` (LLaVA-1.5's own training code) fits it. */
  readonly trainScript: boolean;
  /** LLaMA-Factory's `template:` for it, where LLaMA-Factory has one. */
  readonly llamaFactoryTemplate: string | undefined;
  /** The prompt for an image followed by `userText`, split as the engine takes it. */
  prompt(userText: string): EnginePrompt;
  /** The whole prompt with `<image>` where the image goes (for logs and tests). */
  renderPrompt(userText: string): string;
}

/** What a family is, before its prompt format is bound to a vocabulary. */
interface FamilyTraits {
  name: FamilyName;
  label: string;
  images: 'pad-square' | 'native';
  /**
   * vicuna_v1 always (LLaVA-1.5, MobileVLM: their GGUFs carry no template, or a broken one), the
   * model's own template, or its template where the GGUF has one and vicuna_v1 otherwise (LLaVA-1.6:
   * its Mistral and Yi GGUFs carry one, its Vicuna ones do not).
   */
  prompt: 'vicuna_v1' | 'template' | 'template-else-vicuna_v1';
  trainerFormat: 'llava' | 'sharegpt';
  trainScript: boolean;
  llamaFactoryTemplate?: string;
  /** mtmd's image-token limits are settable (--image-min-tokens / --image-max-tokens). */
  dynamicImageTokens: boolean;
}

const TRAITS: Record<FamilyName, Omit<FamilyTraits, 'name'>> = {
  'llava-1.5': { label: 'LLaVA-1.5', images: 'pad-square', prompt: 'vicuna_v1', trainerFormat: 'llava', trainScript: true, dynamicImageTokens: false },
  'llava-1.6': { label: 'LLaVA-1.6', images: 'native', prompt: 'template-else-vicuna_v1', trainerFormat: 'sharegpt', trainScript: false, llamaFactoryTemplate: 'llava_next', dynamicImageTokens: false },
  mobilevlm: { label: 'MobileVLM', images: 'pad-square', prompt: 'vicuna_v1', trainerFormat: 'llava', trainScript: false, dynamicImageTokens: false },
  'qwen2-vl': { label: 'Qwen2-VL', images: 'native', prompt: 'template', trainerFormat: 'sharegpt', trainScript: false, llamaFactoryTemplate: 'qwen2_vl', dynamicImageTokens: true },
  'qwen2.5-vl': { label: 'Qwen2.5-VL', images: 'native', prompt: 'template', trainerFormat: 'sharegpt', trainScript: false, llamaFactoryTemplate: 'qwen2_vl', dynamicImageTokens: true },
  'qwen3-vl': { label: 'Qwen3-VL', images: 'native', prompt: 'template', trainerFormat: 'sharegpt', trainScript: false, llamaFactoryTemplate: 'qwen3_vl', dynamicImageTokens: true },
  smolvlm: { label: 'SmolVLM (Idefics3)', images: 'native', prompt: 'template', trainerFormat: 'sharegpt', trainScript: false, dynamicImageTokens: false },
  gemma3: { label: 'Gemma 3', images: 'native', prompt: 'template', trainerFormat: 'sharegpt', trainScript: false, llamaFactoryTemplate: 'gemma3', dynamicImageTokens: false },
  other: { label: 'other', images: 'native', prompt: 'template', trainerFormat: 'sharegpt', trainScript: false, dynamicImageTokens: true },
};

/** Every family name (`other`: a projector none of them has). */
export const FAMILY_NAMES = Object.keys(TRAITS) as FamilyName[];

/** The family of a GGUF pair, from its projector type (and LLaVA-1.6's grid pinpoints). */
export function familyNameOf(files: VisionModelFileInfo): FamilyName {
  switch (files.vision.projectorType) {
    case 'mlp':
    case 'mlp_norm':
      return files.vision.gridPinpoints ? 'llava-1.6' : 'llava-1.5';
    case 'ldp':
    case 'ldpv2':
      return 'mobilevlm';
    case 'qwen2vl_merger':
      return 'qwen2-vl';
    case 'qwen2.5vl_merger':
      return 'qwen2.5-vl';
    case 'qwen3vl_merger':
      return 'qwen3-vl';
    case 'idefics3':
      return 'smolvlm';
    case 'gemma3':
      return 'gemma3';
    default:
      return 'other';
  }
}

/** How a family's data is trained, as run.json records it (TrainerRecord, lib/outputs/manifest.ts). */
export interface FamilyTrainer {
  format: 'llava' | 'sharegpt';
  /** Whether `train-lora.sh` (LLaVA-1.5's own training code) fits it. */
  trainScript: boolean;
  llamaFactoryTemplate?: string;
}

/**
 * A family's trainer by its name (run.json's `trainer.family`), for a run.json written before the
 * trainer's traits were recorded; undefined for a name this version does not know.
 */
export function familyTrainer(name: string): FamilyTrainer | undefined {
  return Object.hasOwn(TRAITS, name) ? trainerOf(TRAITS[name as FamilyName]) : undefined;
}

/** A family's trainer traits as run.json records them. */
export function trainerOf(family: Pick<FamilyTraits, 'trainerFormat' | 'trainScript' | 'llamaFactoryTemplate'>): FamilyTrainer {
  return { format: family.trainerFormat, trainScript: family.trainScript, ...(family.llamaFactoryTemplate ? { llamaFactoryTemplate: family.llamaFactoryTemplate } : {}) };
}

/** Whether `--image-min-tokens` / `--image-max-tokens` mean anything for this pair. */
export function hasDynamicImageTokens(files: VisionModelFileInfo): boolean {
  return TRAITS[familyNameOf(files)].dynamicImageTokens;
}

/** The cap on image tokens for the dynamic-resolution families when the caller sets none (mtmd's own is 4096 for Qwen). */
export const DEFAULT_IMAGE_MAX_TOKENS = 1024;

/** `--chat-template` names: LLaVA's vicuna_v1, llama.cpp's chatml, or the GGUF's own. */
export const CHAT_TEMPLATE_NAMES = ['vicuna_v1', 'chatml', 'gguf'] as const;

/** A `--chat-template` value read: a name, or a file holding a Jinja template. */
export interface ChatTemplateChoice {
  name?: (typeof CHAT_TEMPLATE_NAMES)[number];
  file?: string;
  source?: string;
}

/** Reads `--chat-template NAME|FILE`. */
export async function readChatTemplateOption(value: unknown): Promise<ChatTemplateChoice | undefined> {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw invalidArgument(`one of ${CHAT_TEMPLATE_NAMES.join(', ')} or a Jinja template file`, 'chatTemplate', value);
  if ((CHAT_TEMPLATE_NAMES as readonly string[]).includes(value)) return { name: value as ChatTemplateChoice['name'] };
  let info;
  try {
    info = await stat(value);
  } catch {
    throw new SrfError('FILE_NOT_FOUND', `chat template: neither one of ${CHAT_TEMPLATE_NAMES.join(', ')} nor an existing file`, { file: value });
  }
  if (!info.isFile() || info.size === 0 || info.size > 1 << 20) throw new SrfError('INVALID_ARGUMENT', 'the chat template file must be a non-empty Jinja text file under 1 MiB', { file: value });
  return { file: value, source: await readFile(value, 'utf8') };
}

/**
 * The family of a loaded pair: its traits, its prompt format (vicuna_v1, the GGUF's template,
 * chatml where it has none, or the caller's `chatTemplate`), and its tokens.
 */
export function resolveFamily(
  files: VisionModelFileInfo,
  vocab: VocabFacts,
  imageTokens: readonly [number, number],
  chatTemplate?: ChatTemplateChoice,
): ModelFamily {
  const name = familyNameOf(files);
  const traits = TRAITS[name];
  const tokens: TemplateTokens = { bos: vocab.bos.text, eos: vocab.eos.text, addBos: vocab.addBos };
  const endTokens = [vocab.eos, vocab.eot].filter((t, i, all) => t.id >= 0 && all.findIndex((u) => u.id === t.id) === i).map((t) => t.text);
  const base = {
    name,
    label: traits.label,
    projector: files.vision.projectorType,
    images: traits.images,
    endTokens,
    imageTokens,
    trainerFormat: traits.trainerFormat,
    trainScript: traits.trainScript,
    llamaFactoryTemplate: traits.llamaFactoryTemplate,
  };
  const vicuna =
    chatTemplate?.name === 'vicuna_v1' ||
    (chatTemplate === undefined && (traits.prompt === 'vicuna_v1' || (traits.prompt === 'template-else-vicuna_v1' && files.text.chatTemplate === undefined)));
  if (vicuna) {
    return Object.freeze({
      ...base,
      replyEndToken: vocab.eos.id,
      templateSource: chatTemplate ? 'vicuna_v1 (--chat-template)' : `vicuna_v1 (${traits.label})`,
      prompt: (userText: string): EnginePrompt => llavaPromptParts(userText),
      renderPrompt: renderLlavaPrompt,
    });
  }
  let template: ChatTemplate;
  if (chatTemplate?.source !== undefined) template = new ChatTemplate(chatTemplate.source, `the file ${chatTemplate.file}`, tokens);
  else if (chatTemplate?.name === 'chatml') template = new ChatTemplate(CHATML_TEMPLATE, 'chatml (--chat-template)', tokens);
  else if (files.text.chatTemplate !== undefined) template = new ChatTemplate(files.text.chatTemplate, `the GGUF's tokenizer.chat_template (${files.text.path})`, tokens);
  // llama-server's fallback for a model without a template.
  else template = new ChatTemplate(CHATML_TEMPLATE, 'chatml (the GGUF has no tokenizer.chat_template)', tokens);
  const templateSource = chatTemplate?.file ? `${chatTemplate.file} (--chat-template)` : template.origin.replace(/ \(\/.*\)$/, '').replace(/ \([^)]*\.gguf\)$/, '');
  // The end token a reply closes with, as the template writes a finished reply; EOT where unsure.
  const after = template.textAfterReply();
  const closing = [vocab.eot, vocab.eos].find((t) => t.id >= 0 && t.text !== '' && after?.startsWith(t.text));
  const replyEndToken = closing?.id ?? (vocab.eot.id >= 0 ? vocab.eot.id : vocab.eos.id);
  return Object.freeze({
    ...base,
    replyEndToken,
    templateSource,
    prompt(userText: string): EnginePrompt {
      const parts = template.parts(userText);
      return { beforeImage: parts.beforeImage, afterImage: parts.afterImage.map((p) => p.text).join(''), afterImageParts: parts.afterImage };
    },
    renderPrompt(userText: string): string {
      const parts = template.parts(userText);
      return `${parts.beforeImage}<image>${parts.afterImage.map((p) => p.text).join('')}`;
    },
  });
}

/** One line for people: family, projector, prompt source, image tokens, end tokens, trainer format. */
export function describeFamily(family: ModelFamily): string {
  const [low, high] = family.imageTokens;
  const tokens = low < 0 ? 'unknown' : low === high ? `${low}` : `${low}..${high}`;
  const trainer = family.trainerFormat === 'llava' ? 'LLaVA JSON' : `LLaMA-Factory ShareGPT${family.llamaFactoryTemplate ? ` (template ${family.llamaFactoryTemplate})` : ''}`;
  return `${family.label} (projector ${family.projector}); prompt: ${family.templateSource}; images: ${family.images === 'pad-square' ? 'padded to a square' : 'at their own size'}, ${tokens} tokens each; ends a reply with ${family.endTokens.join(' or ')}; trains from ${trainer}`;
}
