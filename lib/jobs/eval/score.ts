/**
 * Scoring answers against ground truth the way the benchmarks LLaVA-1.5 reports do, per question:
 *
 *  - vqa: several reference answers (VQAv2's ten): the official accuracy, min(#references equal to the
 *    answer / 3, 1) averaged over the ten leave-one-out subsets, after the EvalAI processor's
 *    normalisation (vqaNormalize).
 *  - choice: an option letter (A-OKVQA, ScienceQA, MMBench): the letter the answer starts with.
 *  - yesno: POPE-style yes/no; besides accuracy the summary gives precision, recall and F1 of "yes".
 *  - box: REC, IoU >= 0.5 with the reference box (RefCOCO's rule).
 *  - exact: any other single reference: exact match after the method's normalisation
 *    (lib/srf/normalize.ts: the same lowercase/punctuation/articles/number-words rule as VQA's, but it
 *    drops apostrophes where VQA keeps them and maps number words up to twenty, VQA up to ten).
 *
 * Per category and per data type, with 95 % intervals (Wilson for right/wrong scores, normal for VQA's
 * fractional ones).
 */
import { parseBoxAnswer } from '../../srf/box.js';
import { detectDataType, type DataType } from '../../srf/data-types.js';
import { boxIoU } from '../../srf/metrics.js';
import { normalizeForExactMatch } from '../../srf/normalize.js';

export type ScoreKind = 'vqa' | 'choice' | 'yesno' | 'box' | 'exact';

export interface Truth {
  questionId: string;
  /** One reference, or several (VQA's human answers). */
  answers: string[];
  category?: string;
}

export interface ScoredAnswer {
  questionId: string;
  category: string;
  dataType: DataType;
  kind: ScoreKind;
  /** 0..1 (fractional for vqa). */
  score: number;
  /** For yes/no questions: the truth and the answer as yes/no (null when the answer is neither). */
  yesNo?: { truth: 'yes' | 'no'; answer: 'yes' | 'no' | null };
}

// The EvalAI VQA processor (vqaEval.py): punctuation, periods, number words, articles.
const VQA_PUNCTUATION = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];
const VQA_NUMBERS: Readonly<Record<string, string>> = {
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9', ten: '10',
};
const VQA_ARTICLES = new Set(['a', 'an', 'the']);
const COMMA_STRIP = /(\d)(,)(\d)/;
const PERIOD_STRIP = /(?!<=\d)(\.)(?!\d)/g;

/** An answer as the VQAv2 evaluation compares it (without its contractions table). */
export function vqaNormalize(text: string): string {
  const input = text.replace(/\n/g, ' ').replace(/\t/g, ' ').trim();
  let out = input;
  // As EvalAI does: whether a mark is dropped or spaced depends on the original text.
  for (const p of VQA_PUNCTUATION) {
    if (input.includes(`${p} `) || input.includes(` ${p}`) || COMMA_STRIP.test(input)) out = out.split(p).join('');
    else out = out.split(p).join(' ');
  }
  out = out.replace(PERIOD_STRIP, '');
  const words = out
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '' && !VQA_ARTICLES.has(w))
    .map((w) => VQA_NUMBERS[w] ?? w);
  return words.join(' ');
}

/** VQAv2 accuracy of one answer against its human answers: min(matches / 3, 1) over leave-one-out subsets. */
export function vqaAccuracy(answer: string, references: readonly string[]): number {
  const a = vqaNormalize(answer);
  const refs = references.map(vqaNormalize);
  if (refs.length === 1) return a === refs[0] ? 1 : 0;
  let total = 0;
  for (let i = 0; i < refs.length; i++) {
    const matches = refs.filter((r, j) => j !== i && r === a).length;
    total += Math.min(1, matches / 3);
  }
  return total / refs.length;
}

const OPTION_LINE = /(^|\n)\s*\(?[A-Z][.)]\s+\S/;

function asYesNo(text: string): 'yes' | 'no' | null {
  const n = normalizeForExactMatch(text);
  return n === 'yes' || n === 'no' ? n : null;
}

/** How a question is scored: from its references and its text. */
export function scoreKind(question: string, references: readonly string[]): ScoreKind {
  if (references.length > 1) return 'vqa';
  const truth = references[0] ?? '';
  if (parseBoxAnswer(truth)) return 'box';
  if (asYesNo(truth)) return 'yesno';
  if (/^\(?[A-Z][.)]?$/.test(truth.trim()) && OPTION_LINE.test(question)) return 'choice';
  return 'exact';
}

export function scoreAnswer(question: string, answer: string, truth: Truth): ScoredAnswer {
  const kind = scoreKind(question, truth.answers);
  const reference = truth.answers[0] ?? '';
  const dataType = detectDataType(question, reference);
  const base = { questionId: truth.questionId, category: truth.category ?? 'all', dataType, kind };
  switch (kind) {
    case 'vqa':
      return { ...base, score: vqaAccuracy(answer, truth.answers) };
    case 'box': {
      const a = parseBoxAnswer(answer);
      const b = parseBoxAnswer(reference)!;
      return { ...base, score: a !== null && boxIoU(a, b) >= 0.5 ? 1 : 0 };
    }
    case 'yesno': {
      const yesNo = { truth: asYesNo(reference)!, answer: asYesNo(answer) };
      return { ...base, score: yesNo.answer === yesNo.truth ? 1 : 0, yesNo };
    }
    default:
      return { ...base, score: normalizeForExactMatch(answer) === normalizeForExactMatch(reference) ? 1 : 0 };
  }
}

export interface ScoreSummary {
  n: number;
  /** Mean score, 0..1. */
  accuracy: number;
  /** 95 % interval of the mean. */
  low: number;
  high: number;
  /** Yes/no questions only: "yes" as the positive class (POPE). */
  yesNo?: { precision: number; recall: number; f1: number; yesRatio: number };
}

/** 95 % interval: Wilson's for 0/1 scores, the normal one for fractional (VQA) scores. */
export function interval(scores: readonly number[]): { low: number; high: number } {
  const n = scores.length;
  if (n === 0) return { low: 0, high: 0 };
  const mean = scores.reduce((a, b) => a + b, 0) / n;
  const z = 1.959964;
  if (scores.every((s) => s === 0 || s === 1)) {
    const centre = (mean + (z * z) / (2 * n)) / (1 + (z * z) / n);
    const half = (z * Math.sqrt((mean * (1 - mean)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n);
    return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
  }
  const sd = Math.sqrt(scores.reduce((a, s) => a + (s - mean) ** 2, 0) / Math.max(1, n - 1));
  return { low: Math.max(0, mean - (z * sd) / Math.sqrt(n)), high: Math.min(1, mean + (z * sd) / Math.sqrt(n)) };
}

export function summarize(scored: readonly ScoredAnswer[]): ScoreSummary {
  const scores = scored.map((s) => s.score);
  const n = scores.length;
  const summary: ScoreSummary = { n, accuracy: n === 0 ? 0 : scores.reduce((a, b) => a + b, 0) / n, ...interval(scores) };
  const yn = scored.filter((s) => s.yesNo).map((s) => s.yesNo!);
  if (yn.length > 0) {
    const tp = yn.filter((y) => y.truth === 'yes' && y.answer === 'yes').length;
    const saidYes = yn.filter((y) => y.answer === 'yes').length;
    const isYes = yn.filter((y) => y.truth === 'yes').length;
    const precision = saidYes === 0 ? 0 : tp / saidYes;
    const recall = isYes === 0 ? 0 : tp / isYes;
    summary.yesNo = { precision, recall, f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall), yesRatio: saidYes / yn.length };
  }
  return summary;
}

export interface ScoreReport {
  overall: ScoreSummary;
  byCategory: Record<string, ScoreSummary>;
  byDataType: Partial<Record<DataType, ScoreSummary>>;
}

function groupBy<K extends string>(scored: readonly ScoredAnswer[], key: (s: ScoredAnswer) => K): Record<K, ScoreSummary> {
  const groups = new Map<K, ScoredAnswer[]>();
  for (const s of scored) {
    const k = key(s);
    const group = groups.get(k);
    if (group) group.push(s);
    else groups.set(k, [s]);
  }
  return Object.fromEntries([...groups].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, summarize(v)])) as Record<K, ScoreSummary>;
}

export function scoreReport(scored: readonly ScoredAnswer[]): ScoreReport {
  return { overall: summarize(scored), byCategory: groupBy(scored, (s) => s.category), byDataType: groupBy(scored, (s) => s.dataType) };
}
