// Damaged model files never kill the process: every tensor of the world model's mmproj, text model
// and embedder, renamed and with its first dimension halved, opened and asked once, in child
// processes. Each case ends in a coded error or a reply; a signal is a failure. And the six mmproj
// files that used to crash at the first image (a missing q/k/v weight) are refused at open, naming
// the tensor.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { checkMmprojFile, checkTextModelFile } from '../lib/gguf/check.js';
import { isSrfError } from '../lib/errors.js';
import { renderScenePng } from '../lib/world/render.js';
import { generateScene } from '../lib/world/scene.js';
import { worldModelPaths } from '../lib/world/model-files.js';
import { damagedCopy, runSweep, sweepCases } from './helpers/model-file-sweep.js';

const world = worldModelPaths();
const work = await mkdtemp(join(tmpdir(), 'srf-sweep-'));
const image = join(work, 'scene.png');
await writeFile(image, await renderScenePng(generateScene(1_000_000)));
const files = { ...world, image };

for (const [kind, file] of [
  ['mmproj', world.mmproj],
  ['model', world.model],
  ['embedder', world.embedder],
] as const) {
  t.test(`every tensor of the ${kind} damaged: a coded error or a reply, never a signal`, async (t) => {
    const cases = await sweepCases(kind, file);
    const outcomes = await runSweep(cases, files, work);
    t.equal(outcomes.length, cases.length, `${cases.length} cases`);
    const killed = outcomes.filter((o) => o.result.startsWith('signal') || o.result.startsWith('exit'));
    const uncoded = outcomes.filter((o) => o.result.startsWith('uncoded'));
    t.same(killed.map((o) => `${o.case.tensor} ${o.case.damage}: ${o.result}`), [], 'no case ends the process');
    t.same(uncoded.map((o) => `${o.case.tensor} ${o.case.damage}: ${o.result}`), [], 'every error is an SrfError');
    const counts = new Map<string, number>();
    for (const o of outcomes) counts.set(o.result, (counts.get(o.result) ?? 0) + 1);
    t.comment(`${kind}: ${[...counts].map(([r, n]) => `${r} ${n}`).join(', ')}`);
  });
}

t.test('an mmproj missing an attention weight is refused at open, naming the tensor and the file', async (t) => {
  for (const block of [0, 1]) {
    for (const w of ['attn_q', 'attn_k', 'attn_v']) {
      const tensor = `v.blk.${block}.${w}.weight`;
      const path = join(work, `missing-${block}-${w}.gguf`);
      await writeFile(path, await damagedCopy(world.mmproj, tensor, 'renamed'));
      const error = await checkMmprojFile(path).then(
        () => null,
        (e: unknown) => e,
      );
      t.ok(isSrfError(error) && error.code === 'MMPROJ_INVALID', `${tensor}: MMPROJ_INVALID`);
      t.match(String((error as Error).message), tensor, 'the message names the tensor');
      t.equal((error as { file?: string }).file, path, 'and the file');
      t.match(String((error as Error).message), path);
    }
  }
});

t.test('llama.cpp itself refuses a text model missing a tensor (kept as a test: the sweep relies on it)', async (t) => {
  const path = join(work, 'text-missing.gguf');
  await writeFile(path, await damagedCopy(world.model, 'blk.0.attn_q.weight', 'renamed'));
  // The header still reads as a model, so the refusal must come from the engine's load.
  await t.resolves(checkTextModelFile(path));
  const [outcome] = await runSweep([{ kind: 'model', tensor: 'blk.0.attn_q.weight', damage: 'renamed' }], files, work);
  t.match(outcome!.result, /^[A-Z_]+$/, `a coded error: ${outcome!.result}`);
  t.not(outcome!.result, 'reply');
});
