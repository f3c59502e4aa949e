/**
 * `npm run bench:quality`: the filter benchmark; `npm run bench:quality -- round1`: one round of
 * self-refinement with its controls. Both write their section of bench/QUALITY.md and a JSON file
 * beside this script.
 *
 *     node dist/bench/quality/run.js [--images 1000] [--first-seed S] [--tune] [--work DIR] [--models DIR]
 *     node dist/bench/quality/run.js loop [--quick] [--labelled-images 1000] [--generator-steps 400] [--epochs 0] [--seeds 3] [--vqa-first-seed S]
 *         [--arms lOnly,kept,...] [--design NAME] [--kept-filter refined] [--work DIR] ...
 *     node dist/bench/quality/run.js loop-report bench/quality/loop-results-l1000.json
 *     node dist/bench/quality/run.js round1 [--original 1000] [--synthetic 2500] [--vqa 150] [--steps 300] [--batch 16] [--work DIR] [--models DIR]
 *
 * --models: a folder with the round-0 files under models/world's names (default models/world).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { packageRoot } from '../../lib/engine/native.js';
import { worldModelPaths } from '../../lib/world/model-files.js';
import { resolveFilter } from '../../lib/srf/filters.js';
import { filterMarkdown, runFilterBench, writeFilterClaims, writeFilterResults } from './filter-bench.js';
import { QUALITY_SEEDS } from './images.js';
import { ARMS, LOOP_DEFAULTS, LOOP_QUICK, armStatistics, armsOf, runLoop, type LoopResults, type RoundOneArm } from './loop.js';
import { writeLoopResults } from './loop-report.js';
import { ROUND1_DEFAULTS, runRound1, writeRound1Results } from './round1.js';

function option(name: string, fallback: string | number): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : String(fallback);
}

const root = packageRoot();
const here = path.join(root, 'bench', 'quality');
const quality = path.join(root, 'bench', 'QUALITY.md');
const modelDir = process.argv.includes('--models') ? path.resolve(option('models', '')) : null;
const models = modelDir ? worldModelPaths(modelDir) : undefined;
const log = (m: string) => console.error(m);
const started = Date.now();
let wroteQuality = true;

if (process.argv[2] === 'loop') {
  const quick = process.argv.includes('--quick');
  const work = path.resolve(option('work', path.join(tmpdir(), quick ? 'srf-quality-loop-quick' : 'srf-quality-loop')));
  const defaults = quick ? LOOP_QUICK : LOOP_DEFAULTS;
  const o = Object.fromEntries(Object.entries(defaults).map(([k, v]) => [k, Number(option(k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), v))])) as typeof LOOP_DEFAULTS;
  const arms = process.argv.includes('--arms') ? (option('arms', '').split(',') as RoundOneArm[]) : undefined;
  const unknown = arms?.filter((arm) => !(ARMS as readonly string[]).includes(arm)) ?? [];
  if (unknown.length > 0) throw new Error(`--arms: ${unknown.join(', ')} (arms: ${ARMS.join(', ')})`);
  const design = process.argv.includes('--design') ? option('design', '') : undefined;
  const round2 = option('round2', 'union');
  if (round2 !== 'union' && round2 !== 'stacked') throw new Error(`--round2: union or stacked, not ${round2}`);
  // Every finished seed's figures at once, so a run cut off later can still be reported (loop-report).
  const onSeed = (r: LoopResults) => writeFile(path.join(work, 'loop-results.json'), JSON.stringify(r) + '\n');
  const keptFilter = process.argv.includes('--kept-filter') ? resolveFilter(option('kept-filter', '')) : undefined;
  const results = await runLoop({ work, log, ...o, ...(arms ? { arms } : {}), ...(design ? { design } : {}), ...(keptFilter ? { keptFilter } : {}), ...(o.rounds >= 2 ? { round2 } : {}), onSeed });
  await onSeed(results);
  if (!quick) await writeLoopResults(results, here, path.join(here, 'claims.json'), quality);
  wroteQuality = !quick;
  for (const arm of armsOf(results)) console.log(`${arm}: ${(100 * armStatistics(results.models, arm, null).value).toFixed(1)} %`);
} else if (process.argv[2] === 'loop-report') {
  // A finished design's section and claims again from its results file (after the report's code changed).
  const results = JSON.parse(await readFile(path.resolve(process.argv[3] ?? ''), 'utf8')) as LoopResults;
  await writeLoopResults(results, here, path.join(here, 'claims.json'), quality);
} else if (process.argv[2] === 'round1') {
  const work = path.resolve(option('work', path.join(tmpdir(), 'srf-quality-round1')));
  const o = {
    originalImages: Number(option('original', ROUND1_DEFAULTS.originalImages)),
    syntheticImages: Number(option('synthetic', ROUND1_DEFAULTS.syntheticImages)),
    vqaImages: Number(option('vqa', ROUND1_DEFAULTS.vqaImages)),
    steps: Number(option('steps', ROUND1_DEFAULTS.steps)),
    batch: Number(option('batch', ROUND1_DEFAULTS.batch)),
  };
  const results = await runRound1({ work, log, ...o, ...(models ? { models } : {}) });
  const command = `npm run bench:quality -- round1 --original ${o.originalImages} --synthetic ${o.syntheticImages} --vqa ${o.vqaImages} --steps ${o.steps} --batch ${o.batch}`;
  await writeRound1Results(results, path.join(here, 'round1-results.json'), quality, command);
  for (const m of results.models) console.log(`${m.name}: ${(100 * m.overall.accuracy).toFixed(1)} %`);
} else {
  const images = Number(option('images', 1000));
  const firstSeed = Number(option('first-seed', QUALITY_SEEDS.filter));
  const work = path.resolve(option('work', path.join(tmpdir(), 'srf-quality')));
  const results = await runFilterBench({ images, firstSeed, work, log, ...(models ? { models } : {}) });
  // --tune: a block for choosing settings; its figures go to the work folder only, never to QUALITY.md.
  const tune = process.argv.includes('--tune');
  if (tune) {
    await writeFile(path.join(work, 'filter-results.json'), JSON.stringify(results, null, 1) + '\n');
    await writeFile(path.join(work, 'filter.md'), filterMarkdown(results, 'tuning block') + '\n');
    wroteQuality = false;
  } else {
    const command = `npm run bench:quality -- --images ${images}${firstSeed !== QUALITY_SEEDS.filter ? ` --first-seed ${firstSeed}` : ''}`;
    await writeFilterResults(results, path.join(here, 'filter-results.json'), quality, command);
    await writeFilterClaims(results, path.join(here, 'claims.json'));
  }
  const [all, kept] = results.main;
  console.log(`all ${(100 * all!.overall.accuracy).toFixed(1)} %, kept ${(100 * kept!.overall.accuracy).toFixed(1)} % (${results.census.scored} triplets)`);
}
if (wroteQuality) console.error(`bench/QUALITY.md written (${((Date.now() - started) / 1000).toFixed(0)} s)`);
