/**
 * A small SentencePiece-style (BPE) vocabulary learned from the world's texts, in the layout of
 * LLaMA's: <unk> <s> </s>, the 256 byte tokens `<0x00>`..`<0xFF>` (byte fallback: anything unseen,
 * and every newline, still tokenizes), the characters of the corpus, then merged pieces, each with
 * the score -(merge order) so that llama.cpp's tokenizer merges them in the order they were learned.
 */
import { TokenType } from '../../lib/gguf/constants.js';
import { SPM_SPACE } from '../../fixtures/gguf/spm-tokenizer.js';

export interface LearnedVocab {
  tokens: string[];
  scores: Float32Array;
  tokenTypes: Int32Array;
}

/** The text as llama.cpp sees it, cut into words: "▁" starts a word, newlines stand alone (bytes). */
function words(text: string): string[] {
  return text
    .replace(/ /g, SPM_SPACE)
    .split(/(?=\u2581)|(\n)/)
    .filter((w): w is string => w !== undefined && w !== '' && w !== '\n');
}

/**
 * Learns `size` tokens from texts (each given as llama.cpp will see it: with its leading space when
 * it is tokenized with the space prefix).
 */
export function learnVocab(texts: Iterable<string>, size: number): LearnedVocab {
  const counts = new Map<string, number>();
  for (const text of texts) for (const w of words(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const alphabet = new Set<string>();
  for (const w of counts.keys()) for (const c of w) alphabet.add(c);

  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
    scores.push(0);
  }
  for (const c of [...alphabet].sort()) {
    tokens.push(c);
    types.push(TokenType.NORMAL);
    scores.push(0);
  }
  if (tokens.length > size) throw new RangeError(`the corpus needs at least ${tokens.length} tokens`);

  const known = new Set(tokens);
  // Word-frequency BPE: merge the most frequent adjacent pair until the vocabulary is full.
  const split = [...counts.entries()].map(([w, n]) => ({ pieces: [...w], n }));
  for (let merge = 0; tokens.length < size; merge++) {
    const pairs = new Map<string, number>();
    for (const { pieces, n } of split) {
      for (let i = 0; i + 1 < pieces.length; i++) {
        const key = `${pieces[i]}\u0000${pieces[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best = '';
    let bestCount = 1; // a pair seen once is not worth a token
    for (const [key, n] of pairs) if (n > bestCount || (n === bestCount && best !== '' && key < best)) [best, bestCount] = [key, n];
    if (best === '') break;
    const [a, b] = best.split('\u0000') as [string, string];
    const merged = a + b;
    for (const entry of split) {
      const out: string[] = [];
      for (let i = 0; i < entry.pieces.length; i++) {
        if (entry.pieces[i] === a && entry.pieces[i + 1] === b) {
          out.push(merged);
          i++;
        } else {
          out.push(entry.pieces[i] as string);
        }
      }
      entry.pieces = out;
    }
    if (known.has(merged)) continue; // the same piece from another pair: already a token
    known.add(merged);
    tokens.push(merged);
    types.push(TokenType.NORMAL);
    scores.push(-(merge + 1));
  }
  return { tokens, scores: Float32Array.from(scores), tokenTypes: Int32Array.from(types) };
}
