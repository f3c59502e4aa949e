// The 'auto' KV layout choice: per-sequence on CPU while it fits in memory, unified on a GPU.
import t from 'tap';
import { chooseKvLayout, kvBytesPerCell } from '../lib/kv-layout.js';

const GiB = 1024 ** 3;

t.test('bytes per KV cell follow the model shape', async (t) => {
  // LLaVA-1.5-7B: 32 layers, 4096 wide, 32 heads, no GQA: 2 (K, V) x 32 x 4096 x 2 bytes = 512 KiB.
  t.equal(kvBytesPerCell({ nEmbd: 4096, nLayer: 32, nHead: 32, nHeadKv: 32 }), 512 * 1024);
  t.equal(kvBytesPerCell({ nEmbd: 4096, nLayer: 32, nHead: 32, nHeadKv: 8 }), 128 * 1024, 'grouped-query attention stores fewer heads');
  t.equal(kvBytesPerCell({ nEmbd: 768, nLayer: 6, nHead: 0, nHeadKv: 0 }), 2 * 6 * 768 * 2, 'missing head counts: one head');
});

t.test('auto picks by device and memory; explicit choices pass; others fail', async (t) => {
  const cpu = { onGpu: false, perSequenceBytes: 2 * GiB, totalMemory: 24 * GiB };
  t.equal(chooseKvLayout(undefined, cpu), 'per-sequence');
  t.equal(chooseKvLayout('auto', cpu), 'per-sequence');
  t.equal(chooseKvLayout('auto', { ...cpu, perSequenceBytes: 7 * GiB }), 'unified', 'over a quarter of memory: the smaller layout');
  t.equal(chooseKvLayout('auto', { ...cpu, onGpu: true }), 'unified');
  t.equal(chooseKvLayout('per-sequence', { ...cpu, onGpu: true }), 'per-sequence');
  t.equal(chooseKvLayout('unified', cpu), 'unified');
  t.throws(() => chooseKvLayout('split', cpu), { code: 'INVALID_ARGUMENT' });
});

