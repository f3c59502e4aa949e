import { createHash } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { validateLlavaDataset } from '../lib/emit/llava.js';
import { DEMO_BROKEN_IMAGE, DEMO_IMAGE_COUNT } from '../lib/jobs/demo.js';
import type { TripletLine } from '../lib/outputs/journal.js';
import type { RunManifest } from '../lib/outputs/manifest.js';
import { DATA_TYPES } from '../lib/srf/data-types.js';
import { tempDir } from './helpers/fixtures.js';
import { parseJsonLines, runCli } from './helpers/cli.js';

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as unknown;
const readLines = async (file: string) => parseJsonLines(await readFile(file, 'utf8')) as TripletLine[];

t.test('run --demo: every output, consistent with each other', async (t) => {
  const out = join(await tempDir(), 'demo');
  const started = Date.now();
  const result = await runCli(['run', '--demo', '--out', out]);
  const seconds = (Date.now() - started) / 1000;
  t.equal(result.code, 0, result.code === 0 ? 'exit 0' : result.stderr);
  t.comment(`run --demo took ${seconds.toFixed(1)} s`);
  t.match(result.stdout, new RegExp(`^done in .* ${DEMO_IMAGE_COUNT} images`, 'm'));

  const files = await readdir(out);
  for (const file of ['triplets.jsonl', 'train.llava.json', 'train.sharegpt.json', 'train.openai.jsonl', 'train.merged.llava.json', 'run.json', 'report.html', 'train-lora.sh', 'demo-models', 'demo-images']) {
    t.ok(files.includes(file), `${file} written`);
  }
  t.notOk(files.some((f) => f.endsWith('.tmp')), 'no temporary files left');
  t.notOk(files.includes('.srf-native.lock'), 'lock released');
  t.ok(((await stat(join(out, 'train-lora.sh'))).mode & 0o111) !== 0, 'train-lora.sh is executable');

  const lines = await readLines(join(out, 'triplets.jsonl'));
  t.equal(lines.length, DEMO_IMAGE_COUNT, 'one line per input image, the broken one included');
  t.equal(new Set(lines.map((l) => l.id)).size, lines.length, 'ids unique');
  const broken = lines.find((l) => l.image === DEMO_BROKEN_IMAGE);
  t.match(broken, { status: 'error', error: { code: 'IMAGE_UNREADABLE' }, kept: false });
  t.ok(lines.every((l) => typeof l.kept === 'boolean'), 'selection filled in kept on every line');
  const scored = lines.filter((l) => l.status === 'scored');
  t.ok(scored.length >= DEMO_IMAGE_COUNT - 2, 'the world model\'s grammar-held replies parse');
  for (const l of scored) {
    t.ok(DATA_TYPES.includes(l.type!), `type ${l.type}`);
    t.ok(l.score! >= 0 && l.score! <= 1 && Math.abs(l.score! - Math.sqrt(l.simQ! * l.simA!)) < 1e-9, 'S = sqrt(simQ * simA)');
    t.equal(l.paperFaithful, true, 'the demo scores with its embedder');
  }

  const llava = await readJson(join(out, 'train.llava.json'));
  t.same(validateLlavaDataset(llava), { ok: true, records: (llava as unknown[]).length }, 'LLaVA trainer format');
  const kept = lines.filter((l) => l.kept);
  t.equal((llava as unknown[]).length, kept.length, 'train.llava.json holds exactly the kept lines');
  t.same((llava as { id: string }[]).map((r) => r.id).sort(), kept.map((l) => `srf-r0-${l.id}`).sort());
  t.ok((llava as { image: string }[]).every((r) => !r.image.startsWith('/')), 'image paths relative to the image root');
  const merged = await readJson(join(out, 'train.merged.llava.json'));
  t.equal(validateLlavaDataset(merged).ok, true);
  t.equal((merged as unknown[]).length, 3 + kept.length, 'original (3) + kept');
  t.equal((await readJson(join(out, 'train.sharegpt.json')) as unknown[]).length, kept.length);
  // OpenAI-style data: base64 data URLs of JPEG/PNG/WEBP; the GIF and TIFF demo images are left out, and said.
  const openai = parseJsonLines(await readFile(join(out, 'train.openai.jsonl'), 'utf8')) as { messages: { content: unknown }[] }[];
  const serviceFormat = (image: string) => /\.(png|jpe?g|webp)$/.test(image);
  t.equal(openai.length, kept.filter((l) => serviceFormat(l.image)).length, 'kept triplets whose image a fine-tuning service takes');
  t.ok(openai.every((r) => /^data:image\/(png|jpeg|webp);base64,/.test((r.messages[0]?.content as { image_url?: { url: string } }[])[0]?.image_url?.url ?? '')), 'images inlined as base64');
  t.equal(parseJsonLines(await readFile(join(out, 'train.merged.openai.jsonl'), 'utf8')).length, 3 + openai.length, 'merged: the 3 original records + the same kept ones');
  t.equal((await readJson(join(out, 'train.merged.sharegpt.json')) as unknown[]).length, 3 + kept.length);
  const droppedCount = kept.length - openai.length;
  const runJson = (await readJson(join(out, 'run.json'))) as RunManifest;
  if (droppedCount > 0) {
    t.equal(runJson.outputs.dropped?.['train.openai.jsonl']?.count, droppedCount, 'run.json counts the samples left out');
    t.ok(runJson.outputs.warnings?.some((w) => /train\.openai\.jsonl: \d+ samples left out/.test(w)), 'and says so');
  }
  // LLaMA-Factory: the dataset entries beside the ShareGPT files, media_dir in the data arguments
  const info = (await readJson(join(out, 'dataset_info.json'))) as Record<string, { file_name: string; formatting: string }>;
  t.same(Object.keys(info).sort(), ['srf_round0_kept', 'srf_round0_merged']);
  t.equal(info.srf_round0_merged?.file_name, 'train.merged.sharegpt.json');
  t.equal(info.srf_round0_merged?.formatting, 'sharegpt');
  const yaml = await readFile(join(out, 'llamafactory-data.yaml'), 'utf8');
  t.match(yaml, /^dataset: srf_round0_merged$/m);
  t.match(yaml, new RegExp(`^media_dir: ${JSON.stringify(runJson.outputs.mergedImageRoot).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
  t.same(runJson.outputs.imageChecks?.['train.merged.llava.json'], { folder: runJson.outputs.mergedImageRoot, images: new Set([...(merged as { image?: string }[]).map((r) => r.image).filter(Boolean)]).size, missing: 0, examples: [] }, 'every merged image path exists under the folder train-lora.sh passes');

  const manifest = (await readJson(join(out, 'run.json'))) as RunManifest;
  t.equal(manifest.status, 'complete');
  t.equal(manifest.counts?.images, lines.length);
  t.equal(manifest.counts?.scored, scored.length);
  t.equal(manifest.counts?.errors, 1);
  t.equal(manifest.counts?.kept, kept.length);
  t.equal((manifest.counts?.scored ?? 0) + (manifest.counts?.rejected ?? 0) + (manifest.counts?.errors ?? 0), lines.length);
  for (const type of DATA_TYPES) {
    t.equal(manifest.counts?.byType[type].total, scored.filter((l) => l.type === type).length, `${type} count`);
  }
  t.equal(manifest.scoring?.paperFaithful, true);
  t.equal(manifest.round, 0);
  const modelBytes = await readFile(manifest.models!.model.path);
  t.equal(manifest.models?.model.sha256, createHash('sha256').update(modelBytes).digest('hex'), 'model hash recorded');
  t.match(manifest.generation, { seed: 0, parallel: 4, grammar: 'custom' });
  t.equal(manifest.imageRoot, join(out, 'demo-images'));

  const html = await readFile(join(out, 'report.html'), 'utf8');
  t.notMatch(html, /<script/i);
  t.match(html, /Keep rate per type/);

  // select again with another keep-top: counts change, nothing is generated
  const before = lines.map(({ kept: _kept, ...rest }) => rest);
  const select = await runCli(['select', '--in', out, '--keep-top', '1']);
  t.equal(select.code, 0, select.code === 0 ? 'exit 0' : select.stderr);
  const after = await readLines(join(out, 'triplets.jsonl'));
  t.same(after.map(({ kept: _kept, ...rest }) => rest), before, 'the triplets themselves are untouched');
  const keptAll = after.filter((l) => l.kept);
  const reselected = (await readJson(join(out, 'run.json'))) as RunManifest;
  // the run's filter floor (S >= 0.9, on S itself) stays with the folder
  const floor = reselected.selection?.minScore ?? 0;
  const sOf = (l: TripletLine) => l.consistency ?? l.score!;
  t.equal(keptAll.length, scored.filter((l) => sOf(l) > 0 && sOf(l) >= floor).length, 'keep-top 1 keeps every non-zero S at or above the floor');
  t.equal(reselected.counts?.kept, keptAll.length);
  t.equal(reselected.selection?.keepTop, 1);
  t.equal((reselected.timings as { sessions: number }).sessions, 1, 'no new generation session');
  t.equal(((await readJson(join(out, 'train.llava.json'))) as unknown[]).length, keptAll.length);
  t.equal(((await readJson(join(out, 'train.merged.llava.json'))) as unknown[]).length, 3 + keptAll.length, 'select keeps the --merge-with of the run');

  // --min-score 0 switches the floor off (the paper's selection), and stays off for later selects
  const noFloor = await runCli(['select', '--in', out, '--keep-top', '1', '--min-score', '0']);
  t.equal(noFloor.code, 0, noFloor.code === 0 ? 'exit 0' : noFloor.stderr);
  const unfloored = (await readLines(join(out, 'triplets.jsonl'))).filter((l) => l.kept);
  t.equal(unfloored.length, scored.filter((l) => sOf(l) > 0).length, 'without the floor keep-top 1 keeps every non-zero S');
  t.equal(((await readJson(join(out, 'run.json'))) as RunManifest).selection?.minScore, null);
  const badFloor = await runCli(['select', '--in', out, '--min-score', '2']);
  t.not(badFloor.code, 0, 'a floor outside [0, 1] is refused');
  t.match(badFloor.stderr, /--min-score/);
  const floorBack = await runCli(['select', '--in', out, '--keep-top', '1', '--min-score', String(floor)]);
  t.equal(floorBack.code, 0, floorBack.code === 0 ? 'exit 0' : floorBack.stderr);
  t.equal((await readLines(join(out, 'triplets.jsonl'))).filter((l) => l.kept).length, keptAll.length, '--min-score sets the floor again');

  // a second pass to a type mix, and off again
  const present = [...new Set(keptAll.map((l) => l.type!))];
  if (present.length >= 2) {
    const mixFile = join(out, 'mix.json');
    const [first, second] = present as [string, string];
    await writeFile(mixFile, JSON.stringify({ [first]: 1, [second]: 1 }));
    const mixed = await runCli(['select', '--in', out, '--match-mix', mixFile]);
    t.equal(mixed.code, 0, mixed.code === 0 ? 'exit 0' : mixed.stderr);
    const mixedLines = (await readLines(join(out, 'triplets.jsonl'))).filter((l) => l.kept);
    const firstCount = mixedLines.filter((l) => l.type === first).length;
    const secondCount = mixedLines.filter((l) => l.type === second).length;
    t.equal(firstCount, secondCount, `resampled to a 1:1 mix of ${first} and ${second}`);
    t.equal(firstCount, Math.min(keptAll.filter((l) => l.type === first).length, keptAll.filter((l) => l.type === second).length), 'the scarcer type is kept whole');
    t.ok(mixedLines.every((l) => l.type === first || l.type === second), 'types outside the target are dropped');
    const mixManifest = (await readJson(join(out, 'run.json'))) as RunManifest;
    t.equal(mixManifest.selection?.matchMix, mixFile);
    t.equal(mixManifest.counts?.kept, mixedLines.length);
    const off = await runCli(['select', '--in', out, '--no-match-mix']);
    t.equal(off.code, 0, off.code === 0 ? 'exit 0' : off.stderr);
    t.equal((await readLines(join(out, 'triplets.jsonl'))).filter((l) => l.kept).length, keptAll.length, '--no-match-mix restores the top-fraction selection');
  } else {
    t.comment(`only ${present.length} type kept: type-mix pass not exercised by this demo run`);
  }

  // report rebuild
  const report = await runCli(['report', '--in', out]);
  t.equal(report.code, 0, report.code === 0 ? 'exit 0' : report.stderr);
  t.equal(report.stdout.trim(), join(out, 'report.html'));

  // the same command again: everything is done, nothing is generated twice
  const again = await runCli(['run', '--demo', '--out', out, '--keep-top', '0.5']);
  t.equal(again.code, 0, again.code === 0 ? 'exit 0' : again.stderr);
  t.match(again.stderr, new RegExp(`resuming: ${DEMO_IMAGE_COUNT} images already`));
  t.match(again.stdout, new RegExp(`0 this session, ${DEMO_IMAGE_COUNT} from before`));
  const third = await readLines(join(out, 'triplets.jsonl'));
  t.same(third.map(({ kept: _kept, ...rest }) => rest), before);
});

t.test('run --demo --json: stdout is JSON lines only', async (t) => {
  const out = join(await tempDir(), 'demo-json');
  const result = await runCli(['run', '--demo', '--out', out, '--json']);
  t.equal(result.code, 0, result.code === 0 ? 'exit 0' : result.stderr);
  const events = parseJsonLines(result.stdout) as { event: string; status?: string }[];
  t.equal(events[0]?.event, 'start');
  t.equal(events.at(-1)?.event, 'finish');
  t.equal(events.at(-1)?.status, 'complete');
  t.equal(events.filter((e) => e.event === 'image').length, DEMO_IMAGE_COUNT, 'one image event per image');
  t.ok(events.some((e) => e.event === 'progress'));
  t.match(result.stderr, /srf-native: demo: the world model/, 'logs go to stderr');
});
