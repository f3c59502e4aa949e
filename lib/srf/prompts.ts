/**
 * The SRF task instructions, the I->QA reply grammar and the decoding defaults (docs/METHOD.md,
 * "Prompts"); the LLaVA-1.5 format they are wrapped in is the engine's (engine/llava-prompt.ts).
 * The same strings are used for generation and in the emitted training data, so that the model is
 * asked exactly what it was taught.
 */
import type { SamplingOptions } from '../engine/types.js';
import { invalidArgument } from '../errors.js';
import { DEFAULT_TOP_K } from '../engine/option-checks.js';
import { checkInteger, isPlainObject } from '../util/validate.js';

/** The user text after `<image>\n` for each SRF task. */
export interface PromptTemplates {
  /** I->QA: image in, question + answer out. */
  iToQaInstruction: string;
  /** IA->Q: image + answer in, question out. */
  iaToQInstruction(answer: string): string;
  /** IQ->A: ordinary visual question answering; the question itself by default. */
  iqToAInstruction(question: string): string;
}

/** Defaults from docs/METHOD.md (the paper does not publish its wording). */
export const DEFAULT_TEMPLATES: Readonly<PromptTemplates> = Object.freeze({
  iToQaInstruction:
    'Look at the image, write one question about it, then answer it. Reply exactly as:\nQuestion: <question>\nAnswer: <answer>',
  iaToQInstruction: (answer: string) =>
    `Here is an answer about the image: "${answer}"\nWrite the question that this answer responds to.`,
  iqToAInstruction: (question: string) => question,
});

/** Templates as plain strings (for a CLI or a config file); `{A}` and `{Q}` are the placeholders of docs/METHOD.md. */
export interface PromptTemplateStrings {
  iToQa?: string;
  /** Must contain `{A}`. */
  iaToQ?: string;
  /** Must contain `{Q}`. */
  iqToA?: string;
}

/** Fills the defaults in for missing templates and checks the given ones. */
export function resolveTemplates(overrides: Partial<PromptTemplates> = {}): PromptTemplates {
  if (!isPlainObject(overrides as unknown)) throw invalidArgument('an object', 'templates', overrides);
  const templates = { ...DEFAULT_TEMPLATES, ...overrides };
  if (typeof templates.iToQaInstruction !== 'string' || templates.iToQaInstruction.trim() === '') {
    throw invalidArgument('a non-empty string', 'templates.iToQaInstruction', templates.iToQaInstruction);
  }
  for (const key of ['iaToQInstruction', 'iqToAInstruction'] as const) {
    if (typeof templates[key] !== 'function') throw invalidArgument('a function', `templates.${key}`, templates[key]);
  }
  return templates;
}

/** Builds templates from strings with `{A}` / `{Q}` placeholders (every occurrence is replaced). */
/** The templates as strings with their `{A}` / `{Q}` placeholders (what run.json and tasks.json record). */
export function templateStrings(templates: PromptTemplates): Required<PromptTemplateStrings> {
  return { iToQa: templates.iToQaInstruction, iaToQ: templates.iaToQInstruction('{A}'), iqToA: templates.iqToAInstruction('{Q}') };
}

export function templatesFromStrings(strings: PromptTemplateStrings): PromptTemplates {
  if (!isPlainObject(strings as unknown)) throw invalidArgument('an object', 'templates', strings);
  const overrides: Partial<PromptTemplates> = {};
  if (strings.iToQa !== undefined) overrides.iToQaInstruction = strings.iToQa;
  if (strings.iaToQ !== undefined) {
    const template = strings.iaToQ;
    if (typeof template !== 'string' || !template.includes('{A}')) {
      throw invalidArgument('a string containing {A}', 'templates.iaToQ', template);
    }
    overrides.iaToQInstruction = (answer) => template.split('{A}').join(answer);
  }
  if (strings.iqToA !== undefined) {
    const template = strings.iqToA;
    if (typeof template !== 'string' || !template.includes('{Q}')) {
      throw invalidArgument('a string containing {Q}', 'templates.iqToA', template);
    }
    overrides.iqToAInstruction = (question) => template.split('{Q}').join(question);
  }
  return resolveTemplates(overrides);
}

/** The LLaVA format suffixes a generated question may end with (see data-types.ts). */
const GRAMMAR_SUFFIXES = [
  'Answer the question using a single word or phrase.',
  "Answer with the option's letter from the given choices directly.",
];

export interface QaReplyGrammarOptions {
  /** Longest first line of the question, in characters. Default 120. */
  maxQuestionChars?: number;
  /** Most option lines (`A. ...`, `B. ...`, in letter order) after the first line, as in LLaVA's multiple-choice data. Default 4. */
  maxOptions?: number;
  /** Longest option text, in characters. Default 40. */
  maxOptionChars?: number;
  /** Longest line (paragraph) of the answer, in characters. Default 1000. */
  maxAnswerChars?: number;
  /** Most lines (paragraphs, a blank line allowed between them) in the answer. Default 8. */
  maxAnswerLines?: number;
}

/** The bounds qaReplyGrammar uses, defaults filled in. */
export function resolveGrammarBounds(options: QaReplyGrammarOptions = {}): Required<QaReplyGrammarOptions> {
  return {
    maxQuestionChars: checkInteger(options.maxQuestionChars ?? 120, 'maxQuestionChars', 1, 4000),
    maxOptions: checkInteger(options.maxOptions ?? 4, 'maxOptions', 0, 26),
    maxOptionChars: checkInteger(options.maxOptionChars ?? 40, 'maxOptionChars', 1, 4000),
    maxAnswerChars: checkInteger(options.maxAnswerChars ?? 1000, 'maxAnswerChars', 1, 4000),
    maxAnswerLines: checkInteger(options.maxAnswerLines ?? 8, 'maxAnswerLines', 1, 64),
  };
}

function gbnfString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** A line of 1..max characters, no newline, not starting with a space (so a trimmed field is never empty). */
function lineRule(max: number): string {
  return max === 1 ? '[^\\r\\n ]' : `[^\\r\\n ] [^\\r\\n]{0,${max - 1}}`;
}

/**
 * A GBNF grammar (llama.cpp syntax, root rule `root`) that holds the I->QA reply to
 *
 *     Question: <first line>[\nA. <option>[\nB. <option>...]][\n<format suffix>]
 *     Answer: <line>[\n[\n]<line>...]
 *
 * Why not "one line ending in ?": LLaVA's data has questions that are commands (REC: "Please provide
 * the bounding box coordinate of the region this sentence describes: ..."), carry option lines, or end
 * with a format suffix on its own line. The model is taught those (tasks.ts keeps them), and the data
 * types of data-types.ts are recognised from them, so the grammar lets exactly these shapes through.
 * The answer may run over several lines (paragraphs), because step-1 targets do: LLaVA's detailed
 * descriptions and reasoning answers are multi-paragraph and longer than a line of 200 characters, and a
 * bound that cuts them mid-sentence teaches nothing good. Every field is bounded (defaults: 120-character
 * first line, up to 4 options of 40 characters, an answer of up to 8 lines of 1000 characters); in
 * practice the token budget (--max-tokens-qa) ends a long answer first, and the pipeline then trims it
 * back to its last full sentence and records that in triplets.jsonl (truncation.ts).
 * Without option lines the `Answer: ` label comes within 10 + 120 + 65 + 9 = 204 characters, so even a
 * model that writes one character per token reaches it inside the 256-token budget and the reply parses.
 */
export function qaReplyGrammar(options: QaReplyGrammarOptions = {}): string {
  const { maxQuestionChars: maxQuestion, maxOptions, maxOptionChars: maxOption, maxAnswerChars: maxAnswer, maxAnswerLines } = resolveGrammarBounds(options);
  // Options nest so that B can only follow A, C only B, and so on.
  let optionChain = '';
  for (let i = maxOptions - 1; i >= 0; i--) {
    const letter = String.fromCharCode(65 + i);
    optionChain = `"\\n${letter}. " option${optionChain ? ` (${optionChain})?` : ''}`;
  }
  const rules = [
    'root ::= "Question: " question "\\nAnswer: " answer',
    `question ::= qline${maxOptions > 0 ? ' options?' : ''} suffix?`,
    `qline ::= ${lineRule(maxQuestion)}`,
    maxOptions > 0 ? `options ::= ${optionChain}` : '',
    maxOptions > 0 ? `option ::= ${lineRule(maxOption)}` : '',
    `suffix ::= "\\n" (${GRAMMAR_SUFFIXES.map(gbnfString).join(' | ')})`,
    maxAnswerLines > 1 ? `answer ::= aline ("\\n" "\\n"? aline){0,${maxAnswerLines - 1}}` : 'answer ::= aline',
    `aline ::= ${lineRule(maxAnswer)}`,
  ];
  return rules.filter(Boolean).join('\n') + '\n';
}

/** The I->QA reply grammar with the default bounds. */
export const QA_REPLY_GRAMMAR = qaReplyGrammar();

export type TaskName = 'iToQa' | 'iaToQ' | 'iqToA';

/** The engine's top-k (llama.cpp's own default, 40): the method's top-p 0.9 then runs on those 40. */
export { DEFAULT_TOP_K };

/**
 * Decoding defaults of docs/METHOD.md: I->QA sampled (temperature 0.7, top-p 0.9, 256 new tokens),
 * re-predictions greedy with 128 new tokens. I->QA also carries QA_REPLY_GRAMMAR (our choice; set
 * `grammar: undefined` to turn it off). Seeds are left to the caller, which should vary them per image.
 */
export const DEFAULT_DECODING: Readonly<Record<TaskName, Readonly<SamplingOptions>>> = Object.freeze({
  iToQa: Object.freeze({ temperature: 0.7, topK: DEFAULT_TOP_K, topP: 0.9, maxTokens: 256, grammar: QA_REPLY_GRAMMAR }),
  iaToQ: Object.freeze({ temperature: 0, maxTokens: 128 }),
  iqToA: Object.freeze({ temperature: 0, maxTokens: 128 }),
});
