/**
 * The loop's figures as bench/quality/claims.json (what a reader or a script checks) and as
 * bench/QUALITY.md's loop sections, both from the same LoopResults. Each design (named by the size
 * of L) keeps its own section, results file and entry in claims.json's `loopDesigns`; the top-level
 * `pool` and `round1` are the design written last.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ARM_LABELS, ROUND2_ARMS, armStatistics, armsOf, randomArmOf, round2Arm, type Arm, type LoopResults, type PoolFigures } from './loop.js';
import { unanswerableTable } from './filter-bench.js';
import { table, writeSection } from './markdown.js';
import { percent, welchInterval } from './stats.js';
import { QUALITY_SEEDS } from './images.js';

const points = (x: { value: number; low: number; high: number }) => ({ gain: round(100 * x.value), lo: round(100 * x.low), hi: round(100 * x.high) });
const round = (x: number) => Math.round(x * 100) / 100;

/** Each training seed's accuracy of an arm, over the questions of `subset` (all when null). */
export function seedMeans(r: LoopResults, arm: Arm, subset: readonly boolean[] | null = null): number[] {
  return r.models.filter((m) => m.arm === arm).map((m) => {
    const right = m.right.filter((_, i) => !subset || subset[i]);
    return right.length === 0 ? NaN : right.filter(Boolean).length / right.length;
  });
}

/** a - b as a Welch t interval over the seed means (the reviewer's recomputation), in points. */
export function welchPoints(r: LoopResults, a: Arm, b: Arm, subset: readonly boolean[] | null = null) {
  const w = welchInterval(seedMeans(r, a, subset), seedMeans(r, b, subset));
  return { gain: round(100 * w.difference), lo: round(100 * w.low), hi: round(100 * w.high), df: round(w.df) };
}

/** The questions of one family, and of all the others (the loop's gain sits in one family: issue 36). */
export function familySubsets(r: LoopResults, family: string): { only: boolean[]; others: boolean[] } {
  return { only: r.itemFamilies.map((f) => f === family), others: r.itemFamilies.map((f) => f !== family) };
}

const accuracyClaim = (x: { value: number; low: number; high: number }) => ({ acc: round(100 * x.value), lo: round(100 * x.low), hi: round(100 * x.high) });

const poolClaims = (images: number, p: PoolFigures) => ({
  images,
  all: accuracyClaim({ ...p.all, value: p.all.accuracy }),
  kept: accuracyClaim({ ...p.keptAccuracy, value: p.keptAccuracy.accuracy }),
  expectedRandom: round(100 * p.expectedRandom),
});

export function loopClaims(r: LoopResults): Record<string, unknown> {
  const vs = (b: Arm) => points(armStatistics(r.models, 'kept', b));
  const seeds = new Set(r.models.map((m) => m.seed)).size;
  const round1Arms = armsOf(r).filter((arm) => !(ROUND2_ARMS as readonly Arm[]).includes(arm));
  const random = randomArmOf(r);
  const has = (arm: Arm) => armsOf(r).includes(arm);
  return {
    pool: poolClaims(r.options.poolImages, r.pool),
    ...(r.poolPaper ? { poolPaper: poolClaims(r.options.poolImages, r.poolPaper) } : {}),
    ...(r.poolAgreement ? { poolAgreement: poolClaims(r.options.poolImages, r.poolAgreement) } : {}),
    ...(r.filters ? { filters: r.filters } : {}),
    round1: {
      seeds,
      questions: r.questions,
      vqaFirstSeed: r.options.vqaFirstSeed ?? null,
      arms: Object.fromEntries(round1Arms.map((arm) => [arm, { ...accuracyClaim(armStatistics(r.models, arm, null)), seeds: seedCount(r, arm) }])),
      randomControl: random,
      vsOriginalOnly: vs('lOnly'),
      vsRandom: vs(random),
      ...(has('all') ? { vsAll: vs('all') } : {}),
      ...(has('paper') ? { vsPaper: vs('paper'), paperVsOriginalOnly: points(armStatistics(r.models, 'paper', 'lOnly')) } : {}),
      ...(has('ceiling') ? { ceiling: points(armStatistics(r.models, 'ceiling', 'lOnly')) } : {}),
      ...(has('ceilingMatched') ? { ceilingMatched: points(armStatistics(r.models, 'ceilingMatched', 'lOnly')) } : {}),
      // Welch t over the seed means, beside the bootstrap; and shape apart from the other families
      welch: {
        vsOriginalOnly: welchPoints(r, 'kept', 'lOnly'),
        vsRandom: welchPoints(r, 'kept', random),
        ...(has('all') ? { vsAll: welchPoints(r, 'kept', 'all') } : {}),
        ...(has('paper') ? { vsPaper: welchPoints(r, 'kept', 'paper'), paperVsOriginalOnly: welchPoints(r, 'paper', 'lOnly') } : {}),
      },
      // the default filter now, against the filter this design's kept ran with, the paper's and L only
      ...(has('agreement')
        ? { agreement: { vsKept: welchPoints(r, 'agreement', 'kept'), vsOriginalOnly: welchPoints(r, 'agreement', 'lOnly'), vsRandom: welchPoints(r, 'agreement', random), ...(has('paper') ? { vsPaper: welchPoints(r, 'agreement', 'paper') } : {}) } }
        : {}),
      byFamilyGroup: Object.fromEntries(
        (['only', 'others'] as const).map((group) => {
          const subset = familySubsets(r, 'shape')[group];
          return [
            group === 'only' ? 'shape' : 'otherFamilies',
            {
              questions: subset.filter(Boolean).length,
              vsOriginalOnly: { bootstrap: points(armStatistics(r.models, 'kept', 'lOnly', subset)), welch: welchPoints(r, 'kept', 'lOnly', subset) },
              vsRandom: { bootstrap: points(armStatistics(r.models, 'kept', random, subset)), welch: welchPoints(r, 'kept', random, subset) },
              ...(has('paper') ? { vsPaper: { bootstrap: points(armStatistics(r.models, 'kept', 'paper', subset)), welch: welchPoints(r, 'kept', 'paper', subset) } } : {}),
            },
          ];
        }),
      ),
    },
    ...(r.round2 ? { round2: round2Claims(r, r.round2) } : {}),
  };
}

function round2Claims(r: LoopResults, r2: NonNullable<LoopResults['round2']>): Record<string, unknown> {
  const arm = round2Arm(r2.design);
  const hasRandom = armsOf(r).includes('round2Random');
  return {
    design: r2.design ?? 'stacked',
    seeds: new Set(r.models.filter((m) => m.arm === arm).map((m) => m.seed)).size,
    pool: poolClaims(r.options.poolImages, r2.pool),
    ...(r2.rejudged ? { rejudged: poolClaims(r.options.poolImages, r2.rejudged) } : {}),
    ...(r2.union ? { union: { ...poolClaims(2 * r.options.poolImages, r2.union), keptTriplets: r2.union.kept } } : {}),
    generatorVqa: round(100 * share(r2.generator.right)),
    model: accuracyClaim(armStatistics(r.models, arm, null)),
    vsRound1: points(armStatistics(r.models, arm, 'kept')),
    vsOriginalOnly: points(armStatistics(r.models, arm, 'lOnly')),
    welch: {
      vsRound1: welchPoints(r, arm, 'kept'),
      vsOriginalOnly: welchPoints(r, arm, 'lOnly'),
      ...(hasRandom ? { vsRandom: welchPoints(r, arm, 'round2Random'), randomVsRound1: welchPoints(r, 'round2Random', 'kept') } : {}),
    },
    // the same union drawn at random, as many per type and family: does round 2's selection beat chance, and is its data's size alone worth round 1's gap?
    ...(hasRandom
      ? {
          random: { ...accuracyClaim(armStatistics(r.models, 'round2Random', null)), seeds: seedCount(r, 'round2Random') },
          vsRandom: points(armStatistics(r.models, arm, 'round2Random')),
          randomVsRound1: points(armStatistics(r.models, 'round2Random', 'kept')),
        }
      : {}),
  };
}

/** A design's name: given, or the size of its labelled set ("l4000"). */
export function loopDesign(r: Pick<LoopResults, 'options'>): string {
  return r.options.design ?? `l${r.options.labelledImages}`;
}

export function loopMarkdown(r: LoopResults): string {
  const o = r.options;
  const seeds = new Set(r.models.map((m) => m.seed)).size;
  const random = randomArmOf(r);
  const hasPaper = armsOf(r).includes('paper');
  const poolText = (name: string, p: PoolFigures) =>
    `${name}: ${p.scored} scored, all ${percent(p.all.accuracy)} % right, kept ${percent(p.keptAccuracy.accuracy)} % (${p.kept}), ` +
    `a random draw of the kept count per type ${percent(p.expectedRandom)} % (expected value).`;
  const fmt = (x: { value: number; low: number; high: number }, sign = false) =>
    `${sign && x.value >= 0 ? '+' : ''}${percent(x.value)} [${percent(x.low)}, ${percent(x.high)}]`;
  const lines = [
    `### The loop with L = ${o.labelledImages} labelled images (design ${loopDesign(r)})`,
    ...(r.filters ? ['', `Filters: L + kept is \`--filter ${r.filters.kept}\`${r.filters.paper ? `; the paper's arm is a second run on the same U with \`--filter ${r.filters.paper}\`` : ''}. ` +
      `The VQA test's images are scenes ${o.vqaFirstSeed} on${o.vqaFirstSeed !== undefined && o.vqaFirstSeed !== QUALITY_SEEDS.vqa ? ', a block no earlier design was looked at on' : ''}.`] : []),
    '',
    `A pre-stage-2 checkpoint (the world model's frozen tower; language model and projector trained from random weights on captions of ${o.stage1Images} images, ${o.stage1Steps} steps); ` +
      `L = the instruction data of ${o.labelledImages} other images; round 0's generator = the checkpoint trained on step 1 of the method on L (${o.generatorSteps ?? o.steps} steps); ` +
      `\`srf-native run\` on U = ${o.poolImages} held-out images; every arm retrained in full (language model + projector) from the same checkpoint on IQ->A, ` +
      `${(o.epochs ?? 0) > 0 ? `${o.epochs} passes over its data (at least ${o.steps} steps)` : `${o.steps} steps`} of batch 32, early stopping on the validation loss of ${o.validationImages} labelled images; ${seedsText(r)}; ` +
      `${r.questions} held-out VQA questions. Intervals: hierarchical bootstrap over training seeds and questions, and beside it a Welch t interval over the ${seeds} seed means (what a reader recomputes from the seeds; wider when the seeds disagree).`,
    '',
    poolText(`Triplets on U${r.filters ? ` (${r.filters.kept})` : ''}`, r.pool),
    ...(r.poolPaper ? ['', poolText('The same pool by the paper\'s filter', r.poolPaper)] : []),
    ...(r.poolAgreement ? ['', poolText('The same pool by refined-agreement (the default filter now)', r.poolAgreement)] : []),
    '',
    ...(r.pool.unanswerable ? [unanswerableTable(r.pool.unanswerable, r.pool.scored, r.pool.kept), ''] : []),
    ...(r.pool.families ? [poolFamilyTable(r), ''] : []),
    `Round 0's generator (the checkpoint trained on L) answers ${percent(share(r.generator.right))} % of the VQA questions.`,
    '',
    table(
      ['arm', 'synthetic records', 'seeds', 'VQA accuracy', 'L + kept minus this arm (bootstrap)', '(Welch t over seed means)'],
      armsOf(r).map((arm) => [ARM_LABELS[arm], String(r.synthetic[arm] ?? ''), String(seedCount(r, arm)), fmt(armStatistics(r.models, arm, null)), arm === 'kept' ? '' : fmt(armStatistics(r.models, 'kept', arm), true), arm === 'kept' ? '' : welchText(welchPoints(r, 'kept', arm))]),
    ),
    '',
    `Shape questions apart from the other families (L + kept minus L only, minus L + random${hasPaper ? ', minus L + the paper\'s kept' : ''}; bootstrap, then Welch t over seed means):`,
    '',
    table(
      ['questions', 'minus L only', '(Welch)', 'minus L + random', '(Welch)', ...(hasPaper ? ['minus the paper\'s', '(Welch)'] : [])],
      (['only', 'others'] as const).map((group) => {
        const subset = familySubsets(r, 'shape')[group];
        const against = (b: Arm) => [fmt(armStatistics(r.models, 'kept', b, subset), true), welchText(welchPoints(r, 'kept', b, subset))];
        return [`${group === 'only' ? 'shape' : 'the other families'} (${subset.filter(Boolean).length})`, ...against('lOnly'), ...against(random), ...(hasPaper ? against('paper') : [])];
      }),
    ),
    ...(r.round2 ? ['', round2Text(r, r.round2, fmt)] : []),
    '',
    `Per question family (VQA accuracy, mean over the ${seeds} seeds; questions per family in brackets):`,
    '',
    familyTable(r),
  ];
  return lines.join('\n');
}

function round2Text(r: LoopResults, r2: NonNullable<LoopResults['round2']>, fmt: (x: { value: number; low: number; high: number }, sign?: boolean) => string): string {
  const arm = round2Arm(r2.design);
  const against = (b: Arm) => `${fmt(armStatistics(r.models, arm, b), true)} (Welch ${welchText(welchPoints(r, arm, b))})`;
  const pool = (p: PoolFigures) => `all ${percent(p.all.accuracy)} % right, the kept ${percent(p.keptAccuracy.accuracy)} % (${p.kept}), a random draw of the kept count per type ${percent(p.expectedRandom)} %`;
  const generator = `Round 2: its generator (the checkpoint trained on step 1 of the method on round 1's data) answers ${percent(share(r2.generator.right))} % of the VQA questions; on U2 (${r2.pool.scored} other held-out images) ${pool(r2.pool)}.`;
  const union = r2.rejudged && r2.union
    ? ` U's triplets judged again by it (the same ${r2.rejudged.scored} triplets round 0's generator judged: kept ${percent(r.pool.keptAccuracy.accuracy)} % right): ${pool(r2.rejudged)}. ` +
      `Selected together (the union, ${r2.union.scored} triplets): ${pool(r2.union)}; ${unionShare(r, r2.union)} of the kept are U's.`
    : '';
  const control = armsOf(r).includes('round2Random')
    ? ` Its control (${ARM_LABELS.round2Random}): round 2's model minus it ${against('round2Random')}; the control minus round 1's model ${fmt(armStatistics(r.models, 'round2Random', 'kept'), true)} (Welch ${welchText(welchPoints(r, 'round2Random', 'kept'))}).`
    : '';
  return `${generator}${union} Round 2's model (${ARM_LABELS[arm]}) minus round 1's: ${against('kept')}; minus L only: ${against('lOnly')}.${control}`;
}

/** How many of the union's kept triplets come from U (round 1's images) rather than U2. */
function unionShare(r: LoopResults, union: PoolFigures): string {
  return union.keptByFolder ? `${union.keptByFolder['pool-images'] ?? 0} of ${union.kept}` : 'an unknown share';
}

const seedCount = (r: LoopResults, arm: Arm) => new Set(r.models.filter((m) => m.arm === arm).map((m) => m.seed)).size;

/** "10 training seeds per arm", or each arm's count where a run was cut before some arms had them all. */
function seedsText(r: LoopResults): string {
  const counts = armsOf(r).map((arm) => seedCount(r, arm));
  const most = Math.max(...counts);
  if (counts.every((c) => c === most)) return `${most} training seeds per arm`;
  const fewer = armsOf(r).filter((arm) => seedCount(r, arm) < most).map((arm) => `${ARM_LABELS[arm].split(/ \(|:/)[0]}: ${seedCount(r, arm)}`);
  return `${most} training seeds per arm but fewer for ${fewer.join('; ')} (the run was cut there; the table says each arm's count)`;
}

function welchText(w: { gain: number; lo: number; hi: number }): string {
  const sign = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
  return Number.isNaN(w.gain) ? '–' : `${sign(w.gain)} [${sign(w.lo)}, ${sign(w.hi)}]`;
}

function share(right: readonly boolean[]): number {
  return right.length === 0 ? 0 : right.filter(Boolean).length / right.length;
}

/** What each pool's triplets are, per question family: how many, and how often right, among all and among the kept. */
function poolFamilyTable(r: LoopResults): string {
  const pools = [
    { name: 'kept', p: r.pool },
    ...(r.poolPaper ? [{ name: 'the paper\'s kept', p: r.poolPaper }] : []),
    ...(r.poolAgreement ? [{ name: 'refined-agreement\'s kept', p: r.poolAgreement }] : []),
    ...(r.round2?.rejudged ? [{ name: 'kept, judged by round 2\'s generator', p: r.round2.rejudged }] : []),
    ...(r.round2?.union ? [{ name: 'U2\'s kept (round 2\'s run)', p: r.round2.pool }, { name: 'the union\'s kept (round 2)', p: r.round2.union }] : []),
  ];
  const rows = (r.pool.families ?? []).map((f) => {
    const cells = pools.flatMap(({ p }) => {
      const g = p.families?.find((x) => x.family === f.family);
      return g ? [`${g.kept} (${g.kept === 0 ? '–' : percent(g.keptRight / g.kept)} %)`] : ['–'];
    });
    return [f.family, `${f.all} (${percent(f.allRight / f.all)} %)`, ...cells];
  });
  return `Triplets per question family (count, and right among them):\n\n${table(['family', 'all', ...pools.map((x) => x.name)], rows)}`;
}

/** Each arm's accuracy on each question family, averaged over its seeds. */
function familyTable(r: LoopResults): string {
  const rows = r.families.map((family) => {
    const items = r.itemFamilies.flatMap((f, i) => (f === family ? [i] : []));
    const byArm = armsOf(r).map((arm) => {
      const models = r.models.filter((m) => m.arm === arm);
      const mean = models.reduce((sum, m) => sum + share(items.map((i) => m.right[i] ?? false)), 0) / Math.max(1, models.length);
      return percent(mean);
    });
    return [`${family} (${items.length})`, percent(share(items.map((i) => r.generator.right[i] ?? false))), ...byArm];
  });
  return table(['family', 'generator', ...armsOf(r).map((arm) => ARM_LABELS[arm])], rows);
}

/** Writes `loop-results-<design>.json` in `dir`, the design's claims and its QUALITY.md section. */
export async function writeLoopResults(r: LoopResults, dir: string, claimsFile: string, qualityFile: string): Promise<void> {
  const design = loopDesign(r);
  await writeFile(path.join(dir, `loop-results-${design}.json`), JSON.stringify(r) + '\n');
  let claims: Record<string, unknown> = {};
  try {
    claims = JSON.parse(await readFile(claimsFile, 'utf8')) as Record<string, unknown>;
  } catch {
    // first write
  }
  const these = loopClaims(r);
  const designs = { ...(claims.loopDesigns as Record<string, unknown> | undefined), [design]: these };
  await writeFile(claimsFile, JSON.stringify({ ...claims, ...these, loopDesigns: designs }, null, 1) + '\n');
  await writeSection(qualityFile, `loop-${design}`, loopMarkdown(r));
}
