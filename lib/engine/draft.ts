/**
 * Draft replies for greedy requests (GenerateRequest.draft): checked here, verified by the engine.
 * The engine decodes several draft tokens per step and keeps the ones the model would have chosen
 * itself, so only a greedy request without a grammar can take one (its reply does not depend on
 * anything but the logits); for any other request a draft is a mistake worth saying so.
 */
import { SrfError, invalidArgument } from '../errors.js';
import type { SamplingOptions } from './types.js';

/** The native request's draft fields for `draft` (none when undefined or empty). */
export function draftFields(draft: unknown, sampling: SamplingOptions, vocabSize: number, scoreDraft?: unknown): { draftText?: string; draftTokens?: number[]; forceDraft?: boolean } {
  if (scoreDraft !== undefined && typeof scoreDraft !== 'boolean') throw invalidArgument('a boolean', 'scoreDraft', scoreDraft);
  if (draft === undefined || draft === '' || (Array.isArray(draft) && draft.length === 0)) {
    if (scoreDraft) throw new SrfError('INVALID_ARGUMENT', 'scoreDraft needs a draft to score');
    return {};
  }
  if (scoreDraft) return { ...draftFields(draft, sampling, vocabSize), forceDraft: true };
  if ((sampling.temperature ?? 0) > 0 || (sampling.grammar ?? '') !== '') {
    throw new SrfError('INVALID_ARGUMENT', 'a draft is for greedy requests without a grammar (temperature 0, no grammar): it can only speed up a reply that depends on nothing but the logits');
  }
  if (typeof draft === 'string') return { draftText: draft };
  if (Array.isArray(draft) && draft.every((t) => Number.isInteger(t) && t >= 0 && t < vocabSize)) return { draftTokens: draft as number[] };
  throw invalidArgument(`a string or an array of token ids in [0, ${vocabSize})`, 'draft', Array.isArray(draft) ? `[${draft.slice(0, 8).join(', ')}${draft.length > 8 ? ', ...' : ''}]` : draft);
}

/**
 * `{ draft: text }` for a re-prediction whose expected reply the caller already has (IA->Q: the
 * question; IQ->A: the answer), when drafts are on and the call is greedy; else nothing.
 */
export function draftIfGreedy(text: string, sampling: SamplingOptions, enabled: boolean): { draft?: string } {
  return enabled && (sampling.temperature ?? 0) <= 0 && !sampling.grammar && text !== '' ? { draft: text } : {};
}
