/**
 * Fixture vocabularies in the layouts llama.cpp's llama-vocab.cpp expects.
 *
 * SentencePiece (tokenizer.ggml.model = "llama", LLaMA/Vicuna layout): <unk>=0, <s>=1, </s>=2,
 * byte tokens <0x00>..<0xFF> at ids 3..258 (so <0x0A> is the newline token 13), then pieces
 * with "▁" for a leading space. llama.cpp's SPM tokenizer merges adjacent symbols only when the
 * merged string is itself a token, so every word is added together with all of its prefixes
 * ("▁Q", "▁Qu", ... "▁Question"): the leftmost symbol of a word can then always grow to the
 * whole word, whatever order the merges take.
 *
 * WordPiece (tokenizer.ggml.model = "bert"): as llama.cpp's BERT converter writes it, word-initial
 * pieces carry the "▁" phantom space and continuation pieces (BERT's "##ing") are bare; the
 * specials [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0..4) are control tokens without a prefix.
 */
import { TokenType } from './constants.js';
import { ENGLISH_WORDS, ENGLISH_WORDS_LOWER, LINE_START_WORDS, SUFFIX_PIECES } from './words.js';

const PROMPT_WORDS_SET: ReadonlySet<string> = new Set(LINE_START_WORDS);

export const SPACE = '\u2581';

export interface Vocab {
  tokens: string[];
  /** SentencePiece scores (higher merges first); absent for WordPiece. */
  scores?: Float32Array;
  tokenTypes: Int32Array;
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const DIGITS = '0123456789';
const PUNCT = `.,:;?!'"-()/&%$#@*+=<>[]_`;

/** Word-like filler pieces in a fixed order, for padding a vocabulary to its size. */
function* fillerPieces(): Generator<string> {
  const onsets = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'ch', 'sh', 'th', 'st', 'tr', 'pl', 'br', 'gr', 'cl', 'fr'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou', 'ee', 'oo'];
  const codas = ['', 'n', 'r', 's', 't', 'l', 'm', 'd', 'k', 'ng', 'st', 'nd'];
  const syllables: string[] = [];
  for (const o of onsets) for (const v of vowels) for (const c of codas) syllables.push(o + v + c);
  for (const s of syllables) {
    yield SPACE + s;
    yield s;
  }
  for (const a of syllables) {
    for (const b of syllables) {
      yield SPACE + a + b;
      yield a + b;
    }
  }
}

class VocabBuilder {
  readonly tokens: string[] = [];
  readonly types: number[] = [];
  readonly index = new Set<string>();
  /** Target size; Infinity for "no limit, no padding". */
  readonly size: number;

  constructor(size: number) {
    this.size = size;
  }

  get room(): number {
    return this.size - this.tokens.length;
  }

  add(token: string, type: number = TokenType.NORMAL): boolean {
    if (this.index.has(token) || this.room <= 0) return false;
    this.index.add(token);
    this.tokens.push(token);
    this.types.push(type);
    return true;
  }

  /** Add a piece and all of its prefixes (at least `minPrefix` characters long), if they all fit. */
  addClosed(piece: string, minPrefix: number): boolean {
    const chars = [...piece];
    const missing: string[] = [];
    for (let n = minPrefix; n <= chars.length; n++) {
      const p = chars.slice(0, n).join('');
      if (!this.index.has(p)) missing.push(p);
    }
    if (missing.length > this.room) return false;
    for (const p of missing) this.add(p);
    return true;
  }

  /**
   * Fill up to the size with filler pieces; `closed` keeps the vocabulary prefix-closed (each
   * "▁piece" brings its prefixes), as SentencePiece needs.
   */
  pad(closed: boolean): void {
    if (this.room <= 0 || this.size === Infinity) return;
    for (const p of fillerPieces()) {
      if (closed) this.addClosed(p, p.startsWith(SPACE) ? 2 : 1);
      else this.add(p);
      if (this.room <= 0) return;
    }
    throw new RangeError(`vocabulary size ${this.size} is too large for the filler pieces`);
  }
}

/** Smallest SentencePiece vocabulary: specials, 256 bytes, "▁", letters, digits, punctuation. */
export const SPM_MIN_VOCAB = 3 + 256 + 1 + LOWER.length + UPPER.length + DIGITS.length + PUNCT.length;

/** A LLaMA-style SentencePiece vocabulary of exactly `size` tokens. */
export function buildSpmVocab(size: number): Vocab {
  if (!Number.isInteger(size) || size < SPM_MIN_VOCAB) {
    throw new RangeError(`a SentencePiece vocabulary needs at least ${SPM_MIN_VOCAB} tokens, got ${size}`);
  }
  const b = new VocabBuilder(size);
  b.add('<unk>', TokenType.UNKNOWN);
  b.add('<s>', TokenType.CONTROL);
  b.add('</s>', TokenType.CONTROL);
  for (let i = 0; i < 256; i++) b.add(`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`, TokenType.BYTE);
  b.add(SPACE);
  for (const c of LOWER + UPPER + DIGITS + PUNCT) b.add(c);
  // Words with a leading space (prefix-closed from "▁x" on), then word endings. Capitalised
  // prompt words also come without the space, for text after a newline ("\nWhat is ...").
  for (const w of ENGLISH_WORDS) {
    b.addClosed(SPACE + w, 2);
    if (PROMPT_WORDS_SET.has(w) && /^[A-Z]/.test(w)) b.addClosed(w, 1);
  }
  for (const s of SUFFIX_PIECES) b.addClosed(s, 1);
  b.pad(true);

  // Scores: specials and bytes 0, pieces in decreasing order of priority (like SentencePiece's
  // log-probabilities, most frequent first).
  const scores = new Float32Array(size);
  for (let i = 259; i < size; i++) scores[i] = -(i - 259);
  return { tokens: b.tokens, scores, tokenTypes: Int32Array.from(b.types) };
}

/** The WordPiece special tokens, ids 0..4. */
export const WORDPIECE_SPECIALS = { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 } as const;

function addWordPieces(b: VocabBuilder): void {
  const words = ENGLISH_WORDS_LOWER.filter((w) => /^[a-z0-9]+$/.test(w));
  const chars = LOWER + DIGITS;
  for (const s of ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']) b.add(s, TokenType.CONTROL);
  for (const c of chars) b.add(SPACE + c);
  for (const c of PUNCT) b.add(SPACE + c);
  for (const c of chars) b.add(c);
  for (const w of words) b.add(SPACE + w);
  for (const s of SUFFIX_PIECES) b.add(s);
}

/** Number of tokens of the WordPiece vocabulary without filler: specials, characters, words. */
export function wordPieceBaseSize(): number {
  const b = new VocabBuilder(Infinity);
  addWordPieces(b);
  return b.tokens.length;
}

/**
 * An uncased WordPiece vocabulary in llama.cpp's phantom-space layout. `size` 0 means "just the
 * words"; a larger size pads with filler pieces.
 */
export function buildWordPieceVocab(size: number): Vocab {
  const base = wordPieceBaseSize();
  if (size !== 0 && (!Number.isInteger(size) || size < base)) {
    throw new RangeError(`a WordPiece vocabulary needs at least ${base} tokens, got ${size}`);
  }
  const b = new VocabBuilder(size === 0 ? Infinity : size);
  addWordPieces(b);
  b.pad(false);
  return { tokens: b.tokens, tokenTypes: Int32Array.from(b.types) };
}
