/**
 * The task prompts, one definition for `run` and `tasks`: the generator is taught with the prompts of
 * `tasks` and asked with those of `run`, so the two commands must take (and record) the same ones.
 */
import type { PromptTemplateStrings } from '../srf/prompts.js';

export interface PromptArgs {
  'prompt-qa'?: string;
  'prompt-a2q'?: string;
  'prompt-q2a'?: string;
}

export function promptOptionSpecs(group?: string) {
  const g = group === undefined ? {} : { group };
  return {
    'prompt-qa': { ...g, type: 'string' as const, describe: 'I->QA instruction after <image>\\n (\\n in the text is a newline; default: docs/METHOD.md\'s "Look at the image, write one question about it, then answer it. ..."); give tasks and run the same one' },
    'prompt-a2q': { ...g, type: 'string' as const, describe: 'IA->Q instruction, {A} stands for the answer (default: \'Here is an answer about the image: "{A}"\\nWrite the question that this answer responds to.\'); give tasks and run the same one' },
    'prompt-q2a': { ...g, type: 'string' as const, describe: 'IQ->A instruction, {Q} stands for the question (default: "{Q}", the plain LLaVA turn); give tasks and run the same one' },
  };
}

/** The prompts given, as template strings (`\n` typed in a shell is a newline); undefined when none is. */
export function promptTemplates(argv: PromptArgs): PromptTemplateStrings | undefined {
  const unescape = (text: string) => text.replace(/\\n/g, '\n');
  const templates: PromptTemplateStrings = {};
  if (argv['prompt-qa'] !== undefined) templates.iToQa = unescape(argv['prompt-qa']);
  if (argv['prompt-a2q'] !== undefined) templates.iaToQ = unescape(argv['prompt-a2q']);
  if (argv['prompt-q2a'] !== undefined) templates.iqToA = unescape(argv['prompt-q2a']);
  return Object.keys(templates).length > 0 ? templates : undefined;
}
