/**
 * The paper's first claim on the world, in miniature: triplets kept by Triangular Consistency are
 * right more often than all triplets. The committed world model and embedder run the whole pipeline
 * (refine, its defaults) on held-out world images with fixed seeds; the oracle grades every triplet.
 * bench/QUALITY.md has the full-size measurement (npm run bench:quality).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { refine } from '../lib/run/pipeline.js';
import { worldModelPaths } from '../lib/world/model-files.js';
import { accuracyOf, gradeRun, reselectFraction, selectRandomLike } from '../bench/quality/filter.js';
import { QUALITY_SEEDS, writeHeldOutImages } from '../bench/quality/images.js';

/** Images in the test: the first of the benchmark's held-out set. */
const IMAGES = 500;
/**
 * Kept accuracy (top 20 % per type, the default) must beat all-triplet accuracy by MARGIN, and the top
 * 5 % per type (`srf-native select --keep-top 0.05` on the same run) by TOP5_MARGIN (absolute).
 * Measured with the committed world model (v2) on these 500 images (x86-64, 2 threads): all 74/500 =
 * 14.8 %, kept 22/102 = 21.6 % (+6.8), top 5 % 7/29 = 24.1 % (+9.3); top 50 % is only +0.6, so it is
 * not checked. Broken on purpose, once each: a constant score gives 22.5 % at 20 % (passes) but
 * 17.2 % at 5 % (fails); the cosine inverted (1 - cos) 11.0 % and 10.7 % (both fail); the selection's
 * sort reversed keeps 2 triplets, none right (fails). The world model is weak (it answers 15 % of its
 * own questions right) and at 20 % its S orders little better than chance: the margins are thin, and
 * a retrained model needs them measured again (bench/QUALITY.md has the intervals).
 */
const MARGIN = 0.04;
const TOP5_MARGIN = 0.05;

t.test('kept triplets are right more often than all triplets, by a margin', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'srf-quality-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const images = path.join(dir, 'images');
  await writeHeldOutImages(images, QUALITY_SEEDS.filter, IMAGES);
  const files = worldModelPaths();
  await refine({ model: files.model, mmproj: files.mmproj, embedder: files.embedder, images, out: path.join(dir, 'out'), threads: 2, report: false }).result;

  const { triplets, census } = await gradeRun(path.join(dir, 'out'));
  t.equal(census.images, IMAGES);
  t.ok(census.scored >= 0.95 * IMAGES, `${census.scored} of ${IMAGES} replies parsed and scored`);
  const kept = new Set(triplets.filter((x) => x.kept).map((x) => x.id));
  const all = accuracyOf('all', triplets, null).overall;
  const keptAccuracy = accuracyOf('kept', triplets, kept).overall;
  const random = accuracyOf('random', triplets, selectRandomLike(triplets, kept)).overall;
  const summary = `all ${all.right}/${all.n} = ${(100 * all.accuracy).toFixed(1)} %, kept ${keptAccuracy.right}/${keptAccuracy.n} = ${(100 * keptAccuracy.accuracy).toFixed(1)} %, random like kept ${(100 * random.accuracy).toFixed(1)} %`;
  t.ok(keptAccuracy.n >= 0.15 * census.scored, `about 20 % kept (${keptAccuracy.n})`);
  t.ok(all.accuracy > 0.05 && all.accuracy < 0.95, `the model makes mistakes for the filter to find: ${summary}`);
  t.ok(keptAccuracy.accuracy >= all.accuracy + MARGIN, `kept beats all by >= ${MARGIN * 100} points: ${summary}`);
  const top5 = accuracyOf('top5', triplets, await reselectFraction(path.join(dir, 'out'), 0.05)).overall;
  t.ok(top5.accuracy >= all.accuracy + TOP5_MARGIN, `top 5 % per type beats all by >= ${TOP5_MARGIN * 100} points: ${top5.right}/${top5.n} = ${(100 * top5.accuracy).toFixed(1)} %`);
  const half = accuracyOf('half', triplets, await reselectFraction(path.join(dir, 'out'), 0.5)).overall;
  t.comment(`top 50 % (not checked): ${(100 * half.accuracy).toFixed(1)} %`);
});
