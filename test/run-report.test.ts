import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { finalizeOutputs } from '../lib/outputs/finalize.js';
import { writeManifest } from '../lib/outputs/manifest.js';
import { finishedManifest } from './helpers/manifest.js';
import { escapeHtml, writeReport } from '../lib/outputs/report.js';
import { tempDir } from './helpers/fixtures.js';
import { writeImages } from './helpers/cli.js';

const EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>';

async function world(paperFaithful: boolean) {
  const out = await tempDir();
  const images = join(out, 'images');
  await writeImages(images, ['one.png', 'two.jpg', 'three.png', 'four.png', 'broken.png']);
  const lines = [
    { id: 'i1', image: 'one.png', status: 'scored', question: `What is ${EVIL}?`, answer: 'a cat', questionPrime: 'What is it?', answerPrime: `dog ${EVIL}`, type: 'short_text', simQ: 0.9, simA: 0.8, score: 0.85, paperFaithful, round: 1 },
    { id: 'i2', image: 'two.jpg', status: 'scored', question: 'Is it red?', answer: 'yes', questionPrime: 'Is it blue?', answerPrime: 'no', type: 'multiple_choice', simQ: 0.7, simA: 0, score: 0, paperFaithful: true, round: 1 },
    { id: 'i3', image: 'three.png', status: 'scored', question: 'Where?', answer: 'left', questionPrime: 'Where is it?', answerPrime: 'left side', type: 'short_text', simQ: 0.5, simA: 0.4, score: 0.45, paperFaithful, round: 1 },
    { id: 'i4', image: 'four.png', status: 'rejected', rejected: 'unparsable', raw: `Question ${EVIL}`, round: 1 },
    { id: `i5${EVIL}`, image: `broken${EVIL}.png`, status: 'error', error: { code: 'IMAGE_UNREADABLE', message: `bad ${EVIL}` }, round: 1 },
  ];
  await writeFile(join(out, 'triplets.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const manifest = finishedManifest({
    round: 1,
    imageRoot: images,
    scoring: { similarity: paperFaithful ? 'embedding' : 'lexical', paperFaithful, sentenceModel: null, bertscoreModel: null, ...(paperFaithful ? {} : { warning: "scores are NOT the paper's (lexical)" }) },
  });
  await writeManifest(out, manifest);
  return out;
}

t.test('everything the model wrote is escaped; the page runs no script', async (t) => {
  const out = await world(true);
  await finalizeOutputs({ out, imageRoot: join(out, 'images'), keepTop: 0.5, report: false });
  const html = await readFile(await writeReport(out), 'utf8');
  t.notMatch(html, /<script/i, 'no script element, from the model or from us');
  t.notMatch(html, /<img src=x/i, 'no injected element');
  t.match(html, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/, 'shown as text');
  t.match(html, /Content-Security-Policy/);
  t.notMatch(html, /(src|href)="https?:/, 'self-contained: no outside references');
  t.match(html, /<svg/, 'histograms as inline SVG');
  t.match(html, /data:image\/jpeg;base64,/, 'thumbnails as data URLs');
  t.match(html, /IMAGE_UNREADABLE: 1/, 'errors summary');
  t.match(html, /unparsable: 1/, 'rejections summary');
  t.notMatch(html, /NOT paper-faithful/);
});

t.test('thumbnails are bounded; a lexical run says loudly that scores are not the paper\'s', async (t) => {
  const out = await world(false);
  await finalizeOutputs({ out, imageRoot: join(out, 'images'), keepTop: 1, report: false });
  const html = await readFile(await writeReport(out, { examplesPerType: 1 }), 'utf8');
  const thumbs = html.match(/data:image\/jpeg;base64,/g) ?? [];
  t.ok(thumbs.length <= 4, `at most one kept and one not-kept example per type with a type (${thumbs.length})`);
  t.match(html, /class="warn"[^>]*>⚠ scores are NOT the paper/);
});

t.test('escapeHtml', async (t) => {
  t.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  t.equal(escapeHtml('a\u0000b\u001bc\nd'), 'a\ufffdb\ufffdc\nd', 'control characters cannot reach the page');
  t.equal(escapeHtml(undefined), '');
});

t.test('--match-mix reads the type mix of a LLaVA file (streamed in chunks) or a weights object', async (t) => {
  const { loadTypeMix } = await import('../lib/outputs/finalize.js');
  const dir = await tempDir();
  const llava = join(dir, 'mix.json');
  const records = [];
  for (let i = 0; i < 25_000; i++) {
    records.push(
      i % 4 === 0
        ? { id: i, image: 'a.jpg', conversations: [{ from: 'human', value: '<image>\nIs it red?' }, { from: 'gpt', value: 'Yes' }] }
        : { id: i, image: 'a.jpg', conversations: [{ from: 'human', value: '<image>\nWhat colour?\nAnswer the question using a single word or phrase.' }, { from: 'gpt', value: 'Red' }] },
    );
  }
  records.push({ id: 'text', conversations: [{ from: 'human', value: 'Hi?' }, { from: 'gpt', value: 'Hello.' }] });
  await writeFile(llava, JSON.stringify(records));
  const mix = await loadTypeMix(llava);
  t.equal(mix.multiple_choice, 0.25, 'yes/no answers are multiple choice');
  t.equal(mix.short_answer, 0.75);
  const weights = join(dir, 'weights.json');
  await writeFile(weights, JSON.stringify({ fractions: { box: 2, long_text: 1 } }));
  t.match(await loadTypeMix(weights), { box: 2, long_text: 1, short_text: 0 });
  await writeFile(weights, JSON.stringify({ cats: 1 }));
  await t.rejects(loadTypeMix(weights), { code: 'DATA_INVALID' });
});
