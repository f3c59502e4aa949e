/**
 * Text normalisation for comparing short answers, after the VQA evaluation's conventions:
 * lowercase, punctuation out, articles out, number words to digits.
 */
import { invalidArgument } from '../errors.js';

const ARTICLES = new Set(['a', 'an', 'the']);

const NUMBER_WORDS: Readonly<Record<string, string>> = {
  zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9',
  ten: '10', eleven: '11', twelve: '12', thirteen: '13', fourteen: '14', fifteen: '15', sixteen: '16',
  seventeen: '17', eighteen: '18', nineteen: '19', twenty: '20',
};

/** Words of a text after normalising: lowercase, apostrophes dropped, other punctuation out, articles out, number words as digits. */
export function normalizedWords(text: string): string[] {
  if (typeof text !== 'string') throw invalidArgument('a string', 'text', text);
  const cleaned = text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/<\/s>/g, ' ')
    .replace(/['’‘`]/g, '') // "man's" -> "mans", "don't" -> "dont"
    .replace(/(\d),(?=\d{3}(?!\d))/g, '$1') // "1,000" -> "1000"
    .replace(/(?<!\d)\.|\.(?!\d)/g, ' ') // periods go, decimal points stay
    .replace(/[^\p{L}\p{N}.\s]/gu, ' ');
  const words: string[] = [];
  for (const word of cleaned.split(/\s+/)) {
    if (word === '' || ARTICLES.has(word)) continue;
    words.push(NUMBER_WORDS[word] ?? word);
  }
  return words;
}

/** normalizedWords joined with single spaces. */
export function normalizeText(text: string): string {
  return normalizedWords(text).join(' ');
}

/** `A`, `(A)`, `A.`, `A)`, `[A]` alone, or `(A) text` / `A. text` / `A) text`: the option letter, lowercase. */
function optionLetter(text: string): string | null {
  const alone = /^[([]?([A-Za-z])[)\]]?[.:)]?$/.exec(text);
  if (alone) return (alone[1] as string).toLowerCase();
  const bracketed = /^[([]([A-Za-z])[)\]][.:]?\s+\S/.exec(text);
  if (bracketed) return (bracketed[1] as string).toLowerCase();
  // Uppercase only here: "a) ..." is rare as an option and "A dog" (no punctuation) is an article.
  const dotted = /^([A-Z])[.):]\s+\S/.exec(text);
  if (dotted) return (dotted[1] as string).toLowerCase();
  return null;
}

const YES_NO: Readonly<Record<string, 'yes' | 'no'>> = {
  yes: 'yes', yeah: 'yes', yep: 'yes', yup: 'yes', no: 'no', nope: 'no', nah: 'no',
};

/** `Yes`, `yes.`, `Yes, it is.`, `Nope!`: a yes/no word alone or followed by punctuation. "No parking" is not. */
function leadingYesNo(text: string): 'yes' | 'no' | null {
  const match = /^([A-Za-z]+)(?=\s*(?:[,.!;:]|$))/.exec(text);
  return match ? YES_NO[(match[1] as string).toLowerCase()] ?? null : null;
}

/**
 * The form two short answers are compared in for exact match (multiple choice, yes/no):
 * an option letter (`(A)`, `A.`, `A`, `A. cat`) becomes `a`; a leading yes/no word (`Yes, it is.`)
 * becomes `yes`/`no`; anything else goes through normalizeText.
 */
export function normalizeForExactMatch(text: string): string {
  if (typeof text !== 'string') throw invalidArgument('a string', 'text', text);
  const trimmed = text.replace(/<\/s>/g, '').trim();
  return optionLetter(trimmed) ?? leadingYesNo(trimmed) ?? normalizeText(trimmed);
}
