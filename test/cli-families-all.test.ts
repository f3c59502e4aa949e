// `srf-native run` end to end on every other family's tiny pair (Qwen2.5-VL has its own, fuller test
// in cli-families.test.ts): non-square images, one journal line per image, the family named in the
// log and run.json, its trainer's data written, no LLaVA-1.5 training script, and a resume that adds
// nothing.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { writeFamilyPair, writeLlava16Pair, writeMobileVlmPair } from '../fixtures/gguf/family-fixtures.js';
import { runCli, writeImages } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';
import { readJournal } from './helpers/tiny-run.js';

/** What each family must come out as (lib/engine/families.ts is what is under test, so written out here). */
const EXPECTED = [
  { family: 'qwen2-vl', label: 'Qwen2-VL', data: 'train.sharegpt.json' },
  { family: 'qwen3-vl', label: 'Qwen3-VL', data: 'train.sharegpt.json' },
  { family: 'gemma3', label: 'Gemma 3', data: 'train.sharegpt.json' },
  { family: 'smolvlm', label: 'SmolVLM', data: 'train.sharegpt.json' },
  { family: 'llava-1.6', label: 'LLaVA-1.6', data: 'train.sharegpt.json' },
  { family: 'mobilevlm', label: 'MobileVLM', data: 'train.llava.json' },
] as const;

const dir = await tempDir();
// writeImages makes 24+i x 20 images: none square.
await writeImages(join(dir, 'images'), ['a.png', 'b.jpg']);

for (const expected of EXPECTED) {
  t.test(`${expected.family}: run on every image, its trainer's data, and a resume that redoes nothing`, async (t) => {
    const models = join(dir, 'models');
    const pair =
      expected.family === 'llava-1.6' ? await writeLlava16Pair(models, { seed: 4 }) : expected.family === 'mobilevlm' ? await writeMobileVlmPair(models, { seed: 4 }) : await writeFamilyPair(models, expected.family, { seed: 4 });
    const out = join(dir, `out-${expected.family}`);
    const args = ['run', '--model', pair.model, '--mmproj', pair.mmproj, '--images', join(dir, 'images'), '--out', out, '--parallel', '2', '--threads', '1', '--keep-top', '1', '--filter', 'paper', '--no-report', '--max-tokens-qa', '64', '--max-question-chars', '20', '--max-answer-chars', '20', '--max-answer-lines', '1', '--max-tokens-check', '16', '--truncated', 'keep'];
    const first = await runCli(args);
    t.equal(first.code, 0, first.stderr);
    t.match(first.stderr, new RegExp(`model family: ${expected.label.replace(/[.()]/g, '\\$&')}`));
    const lines = await readJournal(out);
    t.equal(lines.length, 2, 'one journal line per image');
    await access(join(out, expected.data));
    await t.rejects(access(join(out, 'train-lora.sh')), 'no LLaVA-1.5 training script');
    t.notMatch(first.stdout + first.stderr, /train-lora\.sh|llava-v1\.5/, 'nothing of LLaVA-1.5\'s training in the next steps');
    const again = await runCli(args);
    t.equal(again.code, 0, again.stderr);
    t.same((await readJournal(out)).map((l) => l.id).sort(), lines.map((l) => l.id).sort(), 'the resume adds no line');
  });
}
