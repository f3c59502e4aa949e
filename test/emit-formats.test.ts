import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { sampleFromLlavaRecord, type KeptTriplet } from '../lib/emit/sample.js';
import { toOpenAiRecord } from '../lib/emit/openai.js';
import { shareGptDatasetInfo, toShareGptRecord } from '../lib/emit/sharegpt.js';

const ROOT = '/data/images';
const KEPT: KeptTriplet = {
  id: 'laion-7',
  image: '/data/images/laion/7.jpg',
  question: 'What is the dog holding?',
  answer: 'A red frisbee.',
  questionPrime: 'What does the dog carry?',
  answerPrime: 'A frisbee.',
  type: 'short_text',
  simQ: 0.81,
  simA: 0.64,
  score: 0.72,
  paperFaithful: false,
  round: 1,
};
const MULTI_TURN = sampleFromLlavaRecord(
  {
    id: 'm1',
    image: 'coco/1.jpg',
    conversations: [
      { from: 'human', value: '<image>\nWhat is it?' },
      { from: 'gpt', value: 'A bus.' },
      { from: 'human', value: 'What color?' },
      { from: 'gpt', value: 'Red.' },
    ],
  },
  { index: 0 },
);
const TEXT_ONLY = sampleFromLlavaRecord({ id: 't1', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello' }] }, { index: 1 });

t.test('LLaMA-Factory ShareGPT records', async (t) => {
  t.same(toShareGptRecord(KEPT, { imageRoot: ROOT }), {
    messages: [
      { role: 'user', content: '<image>What is the dog holding?' },
      { role: 'assistant', content: 'A red frisbee.' },
    ],
    images: ['laion/7.jpg'],
  });
  const multi = toShareGptRecord(MULTI_TURN, { imageRoot: ROOT });
  t.same(multi.messages.map((m) => m.content), ['<image>What is it?', 'A bus.', 'What color?', 'Red.'], 'one marker, first user turn');
  t.same(multi.images, ['coco/1.jpg']);
  t.same(toShareGptRecord(TEXT_ONLY, { imageRoot: ROOT }), {
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ],
  });
  t.same(shareGptDatasetInfo('train.sharegpt.json'), {
    file_name: 'train.sharegpt.json',
    formatting: 'sharegpt',
    columns: { messages: 'messages', images: 'images' },
    tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
  });
});

t.test('OpenAI chat records', async (t) => {
  t.same(await toOpenAiRecord(KEPT, { imageRoot: ROOT }), {
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'laion/7.jpg' } },
          { type: 'text', text: 'What is the dog holding?' },
        ],
      },
      { role: 'assistant', content: 'A red frisbee.' },
    ],
  });
  const absolute = await toOpenAiRecord(KEPT, { imageRoot: ROOT, imageUrl: 'absolute' });
  t.same(absolute.messages[0]?.content, [
    { type: 'image_url', image_url: { url: '/data/images/laion/7.jpg' } },
    { type: 'text', text: 'What is the dog holding?' },
  ]);
  const fileUrl = await toOpenAiRecord(KEPT, { imageRoot: ROOT, imageUrl: 'file-url' });
  t.same((fileUrl.messages[0]?.content as { image_url?: { url: string } }[])[0]?.image_url, { url: 'file:///data/images/laion/7.jpg' });
  const multi = await toOpenAiRecord(MULTI_TURN, { imageRoot: ROOT });
  t.same(multi.messages.slice(2), [
    { role: 'user', content: 'What color?' },
    { role: 'assistant', content: 'Red.' },
  ], 'later turns are plain text');
  t.same(await toOpenAiRecord(TEXT_ONLY, { imageRoot: ROOT }), {
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ],
  });
  await t.rejects(toOpenAiRecord(KEPT, { imageRoot: ROOT, imageUrl: 'https' as never }), { code: 'INVALID_ARGUMENT' });
});

t.test('OpenAI data URLs read the image', async (t) => {
  const root = t.testdir({});
  await mkdir(path.join(root, 'laion'));
  await writeFile(path.join(root, 'laion', '7.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  const record = await toOpenAiRecord({ ...KEPT, image: path.join(root, 'laion', '7.png') }, { imageRoot: root, imageUrl: 'data-url' });
  t.same((record.messages[0]?.content as { image_url?: { url: string } }[])[0]?.image_url, { url: 'data:image/png;base64,iVBORw==' });
  await t.rejects(toOpenAiRecord({ ...KEPT, image: path.join(root, 'missing.jpg') }, { imageRoot: root, imageUrl: 'data-url' }), {
    code: 'FILE_UNREADABLE',
  });
  // What fine-tuning services do not take is refused by content, whatever the extension says.
  await writeFile(path.join(root, 'x.tiff'), Buffer.from('II*\0rest', 'latin1'));
  await t.rejects(toOpenAiRecord({ ...KEPT, image: path.join(root, 'x.tiff') }, { imageRoot: root, imageUrl: 'data-url' }), { code: 'IMAGE_FORMAT_UNSUPPORTED' });
  await writeFile(path.join(root, 'anim.png'), Buffer.from('GIF89a....', 'latin1'));
  await t.rejects(toOpenAiRecord({ ...KEPT, image: path.join(root, 'anim.png') }, { imageRoot: root, imageUrl: 'data-url' }), { code: 'IMAGE_FORMAT_UNSUPPORTED', message: /GIF/ });
  await writeFile(path.join(root, 'laion', 'photo.gif'), Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
  const jpeg = await toOpenAiRecord({ ...KEPT, image: path.join(root, 'laion', 'photo.gif') }, { imageRoot: root, imageUrl: 'data-url' });
  t.match((jpeg.messages[0]?.content as { image_url?: { url: string } }[])[0]?.image_url?.url, /^data:image\/jpeg;base64,/, 'a JPEG named .gif is a JPEG');
});

t.test('OpenAI URLs under a prefix: the relative path, URL-encoded, after the prefix; unsupported formats refused', async (t) => {
  const root = t.testdir({});
  await mkdir(path.join(root, 'laion'));
  await writeFile(path.join(root, 'laion', 'a b.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  await writeFile(path.join(root, 'laion', 'c.gif'), Buffer.from('GIF87a', 'latin1'));
  const options = { imageRoot: root, imageUrl: 'url-prefix' as const, imageUrlPrefix: 'https://cdn.example.org/srf' };
  const record = await toOpenAiRecord({ ...KEPT, image: path.join(root, 'laion', 'a b.png') }, options);
  t.same((record.messages[0]?.content as { image_url?: { url: string } }[])[0]?.image_url, { url: 'https://cdn.example.org/srf/laion/a%20b.png' });
  await t.rejects(toOpenAiRecord({ ...KEPT, image: path.join(root, 'laion', 'c.gif') }, options), { code: 'IMAGE_FORMAT_UNSUPPORTED' });
  await t.rejects(toOpenAiRecord(KEPT, { imageRoot: root, imageUrl: 'url-prefix', imageUrlPrefix: 'cdn/srf' }), { code: 'INVALID_ARGUMENT' });
});
