/**
 * `run --rescore EARLIER`: an earlier run's scored triplets judged again by this run's model. The
 * questions and answers must be the earlier ones (no I->QA), the checks this model's, the outputs a
 * run folder like any other (resumable, mergeable with runs on other folders once re-rooted).
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { writeFixtures } from '../fixtures/gguf/fixtures.js';
import { identifyImage } from '../lib/jobs/inputs.js';
import { refine } from '../lib/jobs/refine.js';
import type { TripletLine } from '../lib/outputs/journal.js';
import { runCli, writeImages } from './helpers/cli.js';
import { SHORT_DECODING, SHORT_GRAMMAR, readJournal, tinyRun } from './helpers/tiny-run.js';

const NAMES = [...Array.from({ length: 8 }, (_, i) => `p${i}.png`), 'broken.png'];
const scored = (lines: TripletLine[]) => lines.filter((l) => l.status === 'scored');
const byId = (lines: TripletLine[]) => new Map(lines.map((l) => [l.id, l]));

async function earlierRun() {
  const { dir, models, base } = await tinyRun(NAMES, { parallel: 1, inFlight: 1, grammar: SHORT_GRAMMAR, decoding: SHORT_DECODING });
  const earlier = await refine(base).result;
  const lines = await readJournal(earlier.out);
  return { dir, models, base, earlier: earlier.out, lines };
}

t.test('judged again by the same model: the same triplets, questions, answers, seeds and scores', async (t) => {
  const { dir, base, earlier, lines } = await earlierRun();
  t.ok(scored(lines).length >= 5, `the earlier run scored ${scored(lines).length} of ${lines.length}`);
  t.ok(lines.some((l) => l.status === 'error'), 'and has an error line (broken.png)');
  const { images: _images, ...options } = base;
  const summary = await refine({ ...options, rescore: earlier, out: join(dir, 'again') }).result;
  t.equal(summary.status, 'complete');
  const again = await readJournal(summary.out);
  t.same(again.map((l) => l.id).sort(), scored(lines).map((l) => l.id).sort(), 'one line per earlier scored triplet, same ids (same image root)');
  const before = byId(lines);
  for (const line of again) {
    const old = before.get(line.id)!;
    t.same(
      { status: line.status, image: line.image, question: line.question, answer: line.answer, seed: line.seed, questionPrime: line.questionPrime, answerPrime: line.answerPrime, score: line.score },
      { status: 'scored', image: old.image, question: old.question, answer: old.answer, seed: old.seed, questionPrime: old.questionPrime, answerPrime: old.answerPrime, score: old.score },
      `${line.id}: as the earlier run judged it (greedy checks, one sequence)`,
    );
  }
  const manifest = JSON.parse(await readFile(join(summary.out, 'run.json'), 'utf8'));
  t.equal(manifest.inputs.kind, 'rescore');
  t.equal(manifest.inputs.location, join(earlier, 'triplets.jsonl'));
  t.equal(manifest.imageRoot, join(dir, 'images'), 'the earlier run\'s image root');
  t.equal(manifest.identity.values.rescore, earlier);

  const resumed = await refine({ ...options, rescore: earlier, out: join(dir, 'again') }).result;
  t.equal(resumed.processed, 0, 'a resume judges nothing twice');
  const other = join(dir, 'other-earlier');
  await refine({ ...base, out: other, limit: 2 }).result;
  await t.rejects(refine({ ...options, rescore: other, out: join(dir, 'again') }).result, { code: 'OUTPUT_CONFLICT', message: /rescore differs.*--rescore/ }, 'a resume from another earlier run is refused');
});

t.test('judged by another model: the earlier questions and answers, this model\'s checks', async (t) => {
  const { dir, base, earlier, lines } = await earlierRun();
  const newer = await writeFixtures(join(dir, 'newer'), { llava: 'tiny', seed: 9 });
  const { images: _images, ...options } = base;
  const summary = await refine({ ...options, model: newer.model, mmproj: newer.mmproj, rescore: earlier, out: join(dir, 'rejudged') }).result;
  const again = await readJournal(summary.out);
  const before = byId(lines);
  t.equal(again.length, scored(lines).length);
  t.ok(again.every((l) => l.question === before.get(l.id)!.question && l.answer === before.get(l.id)!.answer), 'every question and answer is the earlier one');
  const changed = again.filter((l) => l.questionPrime !== before.get(l.id)!.questionPrime || l.answerPrime !== before.get(l.id)!.answerPrime);
  t.ok(changed.length > 0, `the checks are the newer model's (${changed.length} of ${again.length} reconstructions differ)`);
  // What I->QA by the newer model would have written instead (the property rescore must not have).
  const fresh = await readJournal((await refine({ ...base, model: newer.model, mmproj: newer.mmproj, out: join(dir, 'fresh') }).result).out);
  t.ok(scored(fresh).some((l) => l.question !== before.get(l.id)?.question || l.answer !== before.get(l.id)?.answer), 'a fresh run of the newer model would have asked other questions');
});

t.test('re-rooted: the outputs are relative to --image-root and merge with a run on another folder', async (t) => {
  const { dir, base, earlier, lines } = await earlierRun();
  await writeImages(join(dir, 'more'), ['q0.png', 'q1.png', 'q2.png']);
  const { images: _images, ...options } = base;
  const rejudged = await refine({ ...options, rescore: earlier, imageRoot: dir, round: 1, out: join(dir, 'rejudged') }).result;
  const again = await readJournal(rejudged.out);
  t.same(again.map((l) => l.image).sort(), scored(lines).map((l) => `images/${l.image}`).sort(), 'paths relative to the new root');
  t.same(again.map((l) => l.id).sort(), again.map((l) => identifyImage(l.image).id).sort(), 'ids from the new paths, as any run makes them');
  const second = await refine({ ...base, images: join(dir, 'more'), imageRoot: dir, round: 1, out: join(dir, 'second') }).result;
  const merged = await runCli(['merge', '--in', rejudged.out, '--in', second.out, '--out', join(dir, 'union'), '--keep-top', '0.5', '--no-report']);
  t.equal(merged.code, 0, merged.code === 0 ? 'merge exit 0' : merged.stderr);
  const union = await readJournal(join(dir, 'union'));
  t.equal(union.length, again.length + (await readJournal(second.out)).length, 'the union of both runs');

  const outside = await refine({ ...options, rescore: earlier, imageRoot: join(dir, 'more'), out: join(dir, 'outside') }).result;
  const refused = await readJournal(outside.out);
  t.ok(refused.length > 0 && refused.every((l) => l.status === 'error' && l.error?.code === 'INVALID_ARGUMENT' && /not inside the image root/.test(l.error.message)), 'an image outside --image-root is an error line naming why, and the run goes on');
});

t.test('bad input: coded errors that name the file; images gone since are error lines', async (t) => {
  const { dir, base, earlier, lines } = await earlierRun();
  const { images: _images, ...options } = base;
  await t.rejects(refine({ ...options, rescore: join(dir, 'images'), out: join(dir, 'x') }).result, { code: 'FILE_NOT_FOUND', message: /no run\.json/, file: join(dir, 'images') });
  t.throws(() => refine({ ...base, rescore: earlier, out: join(dir, 'y') }), { code: 'INVALID_ARGUMENT', message: /either images or rescore/ });
  t.throws(() => refine({ ...options, rescore: earlier, out: earlier }), { code: 'INVALID_ARGUMENT', message: /other than the run judged again/ }, 'a run cannot judge itself in place');
  const gone = scored(lines)[0]!;
  await rm(join(dir, 'images', gone.image));
  const summary = await refine({ ...options, rescore: earlier, out: join(dir, 'z') }).result;
  const again = byId(await readJournal(summary.out));
  t.equal(again.get(gone.id)?.status, 'error', 'the missing image is an error line');
  t.equal(summary.counts.scored, scored(lines).length - 1, 'the others are judged');

  const cli = await runCli(['run', '--model', base.model, '--mmproj', base.mmproj, '--rescore', earlier, '--images', join(dir, 'images'), '--out', join(dir, 'cli')]);
  t.not(cli.code, 0);
  t.match(cli.stderr, /INVALID_ARGUMENT.*--images or --rescore/);
});

t.test('the CLI: run --rescore', async (t) => {
  const { dir, base, earlier, lines } = await earlierRun();
  const result = await runCli(['run', '--model', base.model, '--mmproj', base.mmproj, '--rescore', earlier, '--out', join(dir, 'cli'), '--parallel', '1', '--threads', '1', '--keep-top', '0.5', '--no-report']);
  t.equal(result.code, 0, result.code === 0 ? 'exit 0' : result.stderr);
  t.equal((await readJournal(join(dir, 'cli'))).length, scored(lines).length);
});
