/**
 * llama.cpp's SentencePiece ("llama") tokenizer, step for step (llm_tokenizer_spm in
 * src/llama-vocab.cpp): the text's spaces become "▁", then adjacent symbols are merged, highest
 * piece score first (ties: leftmost first), while the merged text is a piece of the vocabulary;
 * symbols left without a piece fall back to byte tokens `<0xXX>`. Used to tokenize training data
 * exactly as the engine will; test/world-tokenizer.test.ts checks it against llama.cpp.
 */
import { TokenType } from './constants.js';
import { SPACE as SPM_SPACE } from './vocab.js';

export { SPM_SPACE };

export interface SpmVocabulary {
  tokens: readonly string[];
  scores: ArrayLike<number>;
  tokenTypes: ArrayLike<number>;
}

export interface SpmTokenizeOptions {
  /** Put `<s>` first (llama_tokenize's add_special for a vocabulary with add_bos). Default false. */
  addBos?: boolean;
  /**
   * Prefix the text with a space, as llama_tokenize does for every call on a llama vocabulary
   * (add_space_prefix). Default true. False gives the pieces of text that continues a sequence,
   * as a model generates them (an answer right after `ASSISTANT:`).
   */
  addSpacePrefix?: boolean;
}

interface Symbol {
  start: number; // in the UTF-8 bytes
  n: number;
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** Max-heap on (score, then smaller left). */
class BigramQueue {
  private readonly items: Bigram[] = [];
  get size(): number {
    return this.items.length;
  }
  private before(a: Bigram, b: Bigram): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(item: Bigram): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  pop(): Bigram {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l]!, items[best]!)) best = l;
        if (r < items.length && this.before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}

export class SpmTokenizer {
  readonly bos = 1;
  readonly eos = 2;
  private readonly ids = new Map<string, number>();
  private readonly byteIds: number[] = [];
  private readonly decoder = new TextDecoder();

  constructor(readonly vocab: SpmVocabulary) {
    vocab.tokens.forEach((token, id) => {
      const type = vocab.tokenTypes[id];
      if (type === TokenType.BYTE) {
        this.byteIds[Number.parseInt(token.slice(3, 5), 16)] = id;
      } else if (!this.ids.has(token)) {
        this.ids.set(token, id);
      }
    });
    for (let b = 0; b < 256; b++) if (this.byteIds[b] === undefined) throw new RangeError(`the vocabulary has no byte token for 0x${b.toString(16)}`);
  }

  /** Token ids of `text`, as llama_tokenize gives them with parse_special false. */
  tokenize(text: string, options: SpmTokenizeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos) out.push(this.bos);
    if (text === '' && !(options.addSpacePrefix ?? true)) return out;
    const escaped = ((options.addSpacePrefix ?? true) ? ' ' : '') + text;
    const bytes = Buffer.from(escaped.replace(/ /g, SPM_SPACE), 'utf8');
    this.encode(bytes, out);
    return out;
  }

  private encode(bytes: Buffer, out: number[]): void {
    const symbols: Symbol[] = [];
    for (let offset = 0, index = 0; offset < bytes.length; index++) {
      const n = Math.min(utf8Length(bytes[offset]!), bytes.length - offset);
      symbols.push({ start: offset, n, prev: index - 1, next: offset + n === bytes.length ? -1 : index + 1 });
      offset += n;
    }
    const queue = new BigramQueue();
    const revMerge = new Map<string, [number, number]>();
    const text = (s: Symbol, n = s.n) => bytes.toString('latin1', s.start, s.start + n);
    const tryAdd = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const l = symbols[left]!;
      const r = symbols[right]!;
      const key = text(l, l.n + r.n);
      const id = this.ids.get(latin1ToUtf8(key));
      if (id === undefined) return;
      queue.push({ left, right, score: this.vocab.scores[id]!, size: l.n + r.n });
      revMerge.set(key, [left, right]);
    };
    for (let i = 1; i < symbols.length; i++) tryAdd(i - 1, i);
    while (queue.size > 0) {
      const bigram = queue.pop();
      const left = symbols[bigram.left]!;
      const right = symbols[bigram.right]!;
      if (left.n === 0 || right.n === 0 || left.n + right.n !== bigram.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next]!.prev = bigram.left;
      tryAdd(left.prev, bigram.left);
      tryAdd(bigram.left, left.next);
    }
    const resegment = (symbol: Symbol) => {
      const key = text(symbol);
      const id = this.ids.get(latin1ToUtf8(key));
      if (id !== undefined) {
        out.push(id);
        return;
      }
      const merge = revMerge.get(key);
      if (!merge) {
        for (let j = 0; j < symbol.n; j++) out.push(this.byteIds[bytes[symbol.start + j]!]!);
        return;
      }
      resegment(symbols[merge[0]]!);
      resegment(symbols[merge[1]]!);
    };
    for (let i = 0; i !== -1 && symbols.length > 0; i = symbols[i]!.next) resegment(symbols[i]!);
  }

  /** The text of token ids as llama_token_to_piece joins them (specials omitted, bytes decoded). */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const type = this.vocab.tokenTypes[id];
      const token = this.vocab.tokens[id] ?? '';
      if (type === TokenType.BYTE) bytes.push(Number.parseInt(token.slice(3, 5), 16));
      else if (type === TokenType.NORMAL || type === TokenType.USER_DEFINED) bytes.push(...Buffer.from(token.replace(/\u2581/g, ' '), 'utf8'));
    }
    return this.decoder.decode(Uint8Array.from(bytes));
  }
}

function utf8Length(first: number): number {
  return first < 0x80 ? 1 : first >> 5 === 0x6 ? 2 : first >> 4 === 0xe ? 3 : first >> 3 === 0x1e ? 4 : 1;
}

function latin1ToUtf8(key: string): string {
  return Buffer.from(key, 'latin1').toString('utf8');
}
