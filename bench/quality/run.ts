/**
 * `npm run bench:quality`: the filter benchmark (and, with `round1`, the self-refinement round).
 *
 *     node dist/bench/quality/run.js [--images 500] [--work DIR] [--models DIR (default models/world)]
 */
import path from 'node:path';
import { tmpdir } from 'node:os';
import { packageRoot } from '../../lib/native.js';
import { WORLD_MODEL_FILES } from '../../lib/world/model-files.js';
import { runFilterBench, writeFilterResults } from './filter-bench.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

const images = Number(option('images', '500'));
const work = path.resolve(option('work', path.join(tmpdir(), 'srf-quality')));
const root = packageRoot();
const started = Date.now();
const modelDir = process.argv.includes('--models') ? path.resolve(option('models', '')) : null;
const models = modelDir
  ? { model: path.join(modelDir, WORLD_MODEL_FILES.model), mmproj: path.join(modelDir, WORLD_MODEL_FILES.mmproj), embedder: path.join(modelDir, WORLD_MODEL_FILES.embedder) }
  : undefined;
const results = await runFilterBench({ images, work, log: (m) => console.error(m), ...(models ? { models } : {}) });
const command = `npm run bench:quality -- --images ${images}`;
await writeFilterResults(results, path.join(root, 'bench', 'quality', 'filter-results.json'), path.join(root, 'bench', 'QUALITY.md'), command);
const [all, kept] = results.main;
console.log(`all ${(100 * all!.overall.accuracy).toFixed(1)} %, kept ${(100 * kept!.overall.accuracy).toFixed(1)} % (${results.census.scored} triplets, ${((Date.now() - started) / 1000).toFixed(0)} s); bench/QUALITY.md written`);
