// The hostile-input sweep (model-file-sweep.test.ts) over each newer family's tiny pair: every
// tensor of its mmproj and text model renamed and with its first dimension halved, opened and asked
// once in child processes. Each case ends in a coded error or a reply; a signal is a failure.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FIXTURE_FAMILIES, writeFamilyPair } from '../fixtures/gguf/family-fixtures.js';
import { runSweep, sweepCases } from './helpers/model-file-sweep.js';
import { writeTestImage } from './helpers/fixtures.js';

const work = await mkdtemp(join(tmpdir(), 'srf-sweep-families-'));
const image = await writeTestImage(work, 'wide.png', 1, 70, 40);
const only = process.env.SRF_SWEEP_FAMILIES?.split(',');

for (const family of FIXTURE_FAMILIES.filter((f) => !only || only.includes(f))) {
  const pair = await writeFamilyPair(join(work, 'models'), family, { seed: 2 });
  const files = { ...pair, embedder: '', image };
  for (const [kind, file] of [
    ['mmproj', pair.mmproj],
    ['model', pair.model],
  ] as const) {
    t.test(`${family}: every tensor of the ${kind} damaged: a coded error or a reply, never a signal`, async (t) => {
      const cases = await sweepCases(kind, file);
      const outcomes = await runSweep(cases, files, work);
      t.equal(outcomes.length, cases.length, `${cases.length} cases`);
      const killed = outcomes.filter((o) => o.result.startsWith('signal') || o.result.startsWith('exit'));
      const uncoded = outcomes.filter((o) => o.result.startsWith('uncoded'));
      t.same(killed.map((o) => `${o.case.tensor} ${o.case.damage}: ${o.result.slice(0, 200)}`), [], 'no case ends the process');
      t.same(uncoded.map((o) => `${o.case.tensor} ${o.case.damage}: ${o.result}`), [], 'every error is an SrfError');
      const counts = new Map<string, number>();
      for (const o of outcomes) counts.set(o.result, (counts.get(o.result) ?? 0) + 1);
      t.comment(`${family} ${kind}: ${[...counts].map(([r, n]) => `${r} ${n}`).join(', ')}`);
    });
  }
}
