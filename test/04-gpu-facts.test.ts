// What the GPU path knows before work: the CUDA libraries' kernels (read from the installed files),
// each GPU's verdict (from injected compute capabilities and driver versions), which library is
// loaded, and --require-gpu failing before anything is read when the work would run on the CPU.
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildInfo, isSrfError, refine, VisionModel } from '../lib/index.js';
import { judgeKernels, ptxIsaCudaVersion, readCudaKernels, type CudaKernels } from '../lib/engine/cuda-kernels.js';
import { backendWarning, judgeLibrary, librariesToTry, type DriverFacts } from '../lib/engine/gpu-plan.js';
import { defaultDevices, resolveDevices, whyNotOnGpu } from '../lib/engine/devices.js';
import { spawnCli } from './helpers/cli.js';
import { makeWorld } from './helpers/fixtures.js';

const info = buildInfo();
const mainLibrary = info.cuda.libraries.find((l) => l.role === 'main');
const fallbackLibrary = info.cuda.libraries.find((l) => l.role === 'fallback');

t.test('the kernels of node-llama-cpp 3.21.1\'s CUDA libraries, read from their fatbin headers', async (t) => {
  if (!mainLibrary) {
    t.skip('needs the prebuilt CUDA package (@node-llama-cpp/linux-x64-cuda)');
    return;
  }
  const main = readCudaKernels(mainLibrary.path);
  t.same(main, { cubins: [86, 89, 120, 121], ptx: [75, 80, 90], ptxIsa: '9.1', cudaRuntime: 13 }, 'main: cubins for Ampere consumer, Ada, Blackwell consumer; PTX up to compute_90 from CUDA 13.1');
  if (fallbackLibrary) {
    t.same(readCudaKernels(fallbackLibrary.path), { cubins: [86], ptx: [50, 61, 70, 75, 80], ptxIsa: '8.4', cudaRuntime: 12 }, 'fallback: CUDA 12.4 tools');
  }
  t.equal(readCudaKernels(join(info.prebuiltDir, 'libggml-base.so')), null, 'a library without CUDA code has no kernels');
  t.match(mainLibrary.kernelsText, /^native sm_86, sm_89, sm_120, sm_121; PTX compute_75, compute_80, compute_90 \(ISA 9\.1, from CUDA 13\.1 tools\)$/);
  t.equal(info.cudaArchitectures, '86,89,120,121', 'info says what the prebuilt library holds, not CMAKE_CUDA_ARCHITECTURES');
});

t.test('PTX ISA versions and the CUDA they need', async (t) => {
  t.equal(ptxIsaCudaVersion('9.1'), 13010);
  t.equal(ptxIsaCudaVersion('9.0'), 13000);
  t.equal(ptxIsaCudaVersion('8.4'), 12040);
  t.equal(ptxIsaCudaVersion('8.5'), 12050);
  t.equal(ptxIsaCudaVersion('8.6'), 12070, '8.6 came with 12.7');
  t.equal(ptxIsaCudaVersion('8.8'), 12090);
  t.equal(ptxIsaCudaVersion('7.8'), 11080);
  t.equal(ptxIsaCudaVersion('nonsense'), 0);
});

// node-llama-cpp 3.21.1's two libraries, as read above (fixed here so that the verdicts are tested on any machine).
const MAIN: CudaKernels = { cubins: [86, 89, 120, 121], ptx: [75, 80, 90], ptxIsa: '9.1', cudaRuntime: 13 };
const FALLBACK: CudaKernels = { cubins: [86], ptx: [50, 61, 70, 75, 80], ptxIsa: '8.4', cudaRuntime: 12 };

t.test('a verdict per GPU from its compute capability and the driver', async (t) => {
  const cases: [string, CudaKernels, number, number, number, string, RegExp][] = [
    ['H100 on a CUDA 13.0 driver (580)', MAIN, 9, 0, 13000, 'cannot-run', /compute_90 PTX \(ISA 9\.1\) needs a driver for CUDA 13\.1 or newer; this driver supports CUDA 13\.0/],
    ['H100 on a CUDA 13.1 driver', MAIN, 9, 0, 13010, 'jit', /no native kernels for sm_90: the driver compiles its compute_90 PTX/],
    ['H200, driver not known', MAIN, 9, 0, 0, 'jit', /compute_90/],
    ['A100', MAIN, 8, 0, 13010, 'jit', /compute_80 PTX/],
    ['B200', MAIN, 10, 0, 13010, 'jit', /sm_100: the driver compiles its compute_90 PTX/],
    ['RTX 4090 / L4', MAIN, 8, 9, 13000, 'native', /cubin sm_89/],
    ['A10 / RTX 3090', MAIN, 8, 6, 13000, 'native', /cubin sm_86/],
    ['Jetson Orin (8.7) runs sm_86 code', MAIN, 8, 7, 13000, 'native', /cubin sm_86/],
    ['RTX 5090', MAIN, 12, 0, 13010, 'native', /cubin sm_120/],
    ['a CUDA 12.8 driver cannot start the CUDA 13 runtime', MAIN, 8, 9, 12080, 'cannot-run', /CUDA 13 runtime needs a driver for CUDA 13\.0 or newer/],
    ['P100 (6.0): every PTX is newer', MAIN, 6, 0, 13010, 'cannot-run', /no code for sm_60/],
    ['H100 with the fallback on a CUDA 13.0 driver', FALLBACK, 9, 0, 13000, 'jit', /compute_80 PTX/],
    ['RTX 4090 with the fallback', FALLBACK, 8, 9, 12040, 'native', /cubin sm_86/],
  ];
  for (const [name, kernels, major, minor, driver, verdict, reason] of cases) {
    const judged = judgeKernels(kernels, major, minor, driver);
    t.equal(judged.verdict, verdict, `${name}: ${verdict}`);
    t.match(judged.reason, reason, name);
  }
});

const h100 = (cudaVersion: number): DriverFacts => ({ installed: true, present: true, cudaVersion, gpus: [{ name: 'NVIDIA H100 80GB HBM3', major: 9, minor: 0, memoryTotal: 85e9 }], error: '' });
const libraries = [
  { role: 'main' as const, path: '/x/libggml-cuda.so', kernels: MAIN },
  { role: 'fallback' as const, path: '/x/fallback/libggml-cuda.so', kernels: FALLBACK },
];

t.test('which CUDA libraries are loaded: never one that cannot run on any GPU here', async (t) => {
  t.same(librariesToTry(libraries, h100(13000)).map((l) => l.role), ['fallback'], 'a 580 driver: the main library would abort at its first kernel, the fallback is tried');
  t.same(librariesToTry(libraries, h100(13010)).map((l) => l.role), ['main', 'fallback'], 'a 13.1 driver: the main library first');
  t.same(librariesToTry(libraries, { installed: true, present: true, cudaVersion: 0, gpus: [], error: '' }).map((l) => l.role), ['main', 'fallback'], 'GPUs unknown: both, in order');
  t.same(librariesToTry(libraries, { installed: false, present: false, cudaVersion: 0, gpus: [], error: 'none' }), [], 'no driver: none');
  t.equal(backendWarning({ installed: false, present: false, cudaVersion: 0, gpus: [], error: 'no NVIDIA driver' }, libraries, []), '', 'no driver: the CPU is no news');
  t.match(
    backendWarning({ installed: true, present: false, cudaVersion: 13000, gpus: [], error: 'the NVIDIA driver failed to start: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803)' }, libraries, []),
    /^an NVIDIA driver is installed, but the NVIDIA driver failed to start: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH \(803\): running on the CPU$/,
    'a driver that does not start is said',
  );
  const verdicts = judgeLibrary(libraries[0]!, h100(13000));
  t.equal(verdicts[0]?.verdict, 'cannot-run');
  t.match(verdicts[0]?.fix ?? '', /an NVIDIA driver for CUDA 13\.1 or newer, or npx srf-native build --from-source --gpu cuda/, 'the verdict says what fixes it');
  t.match(judgeLibrary(libraries[0]!, h100(13010))[0]?.fix ?? '', /npx srf-native build --from-source --gpu cuda/, 'JIT: the build with native kernels');
  const warning = backendWarning(h100(13000), libraries, [{ path: '/x/fallback/libggml-cuda.so', loaded: false, gpus: 0, error: 'libcudart.so.12: cannot open shared object file' }]);
  t.match(warning, /main CUDA library not loaded: GPU 0 \(NVIDIA H100 80GB HBM3, 9\.0\): .*needs a driver for CUDA 13\.1/, 'the warning says why the main library was left out');
  t.match(warning, /fallback CUDA library: libcudart\.so\.12/, 'and why the fallback did not load');
  t.equal(backendWarning(h100(13010), libraries, [{ path: '/x/libggml-cuda.so', loaded: true, gpus: 1, error: '' }]), '', 'nothing to say when a library runs the GPU');
});

t.test('a GPU the loaded library cannot run gets no work', async (t) => {
  const cpu = { name: 'CPU', description: 'x', type: 'cpu', memoryTotal: 0, memoryFree: 0 };
  const gpu = (i: number, cudaVerdict: 'native' | 'jit' | 'cannot-run') => ({ name: `CUDA${i}`, description: 'GPU', type: 'gpu', memoryTotal: 1, memoryFree: 1, cudaVerdict });
  const mixed = [gpu(0, 'cannot-run'), gpu(1, 'jit'), cpu];
  t.same(resolveDevices('all', mixed).map((d) => d.label), ['gpu 1 (CUDA1)'], 'all leaves it out');
  t.throws(() => resolveDevices('0', mixed), { code: 'INVALID_ARGUMENT', message: /GPU 0 \(CUDA0\) cannot run the CUDA library that loaded/ });
  t.equal(defaultDevices(undefined, [gpu(0, 'cannot-run'), gpu(1, 'native'), cpu]), 'all', 'one engine would split layers onto it: replicas on the others instead');
  t.same(resolveDevices('all', [gpu(0, 'cannot-run'), cpu]), [{ label: 'cpu', onGpu: false }], 'none runnable: the CPU');
});

t.test('why work would not run on a GPU', async (t) => {
  const withGpu = { ...info, backend: 'cuda' as const, backendWarning: '', devices: [{ name: 'CUDA0', description: 'H100', type: 'gpu', memoryTotal: 1, memoryFree: 1, cudaVerdict: 'jit' as const }, ...info.devices] };
  t.equal(whyNotOnGpu({}, withGpu), '', 'a runnable GPU: it would');
  t.match(whyNotOnGpu({ gpuLayers: 0 }, withGpu), /gpuLayers 0/);
  t.match(whyNotOnGpu({ devices: 'cpu,cpu' }, withGpu), /put every replica on the CPU/);
  t.equal(whyNotOnGpu({ devices: '0' }, withGpu), '');
  t.match(whyNotOnGpu({}, info), info.backend === 'cuda' ? /^$/ : /.+/, 'on this machine: the reason, where there is no GPU');
});

t.test('--require-gpu on this machine: exit 2 before anything is written, with the reason', { skip: info.backend === 'cuda' ? 'a GPU is here' : false }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'srf-require-gpu-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'out');
  const run = await spawnCli(['run', '--demo', '--out', out, '--require-gpu']).output;
  t.equal(run.code, 2, run.stderr);
  t.match(run.stderr, /GPU_REQUIRED: a GPU is required \(--require-gpu\), but this work would run on the CPU: /);
  t.notOk(existsSync(out), 'nothing was written');
  const env = await spawnCli(['run', '--demo', '--out', out], { env: { SRF_REQUIRE_GPU: '1' } }).output;
  t.equal(env.code, 2, 'SRF_REQUIRE_GPU=1 does the same');
  t.match(env.stderr, /GPU_REQUIRED: .*SRF_REQUIRE_GPU=1/);
  const evalRun = await spawnCli(['eval', '--model', 'm.gguf', '--mmproj', 'p.gguf', '--questions', 'q.jsonl', '--answers-file', join(dir, 'a.jsonl'), '--require-gpu']).output;
  t.equal(evalRun.code, 2, 'eval too');
  t.match(evalRun.stderr, /GPU_REQUIRED/);
  // As a user with an H100 on the 580 driver sees it: the prebuilt main library cannot run there.
  if (mainLibrary) {
    const facts = JSON.stringify(h100(13000));
    const h = await spawnCli(['run', '--demo', '--out', out, '--require-gpu'], { env: { SRF_TEST_DRIVER_FACTS: facts } }).output;
    t.equal(h.code, 2);
    t.match(h.stderr, /GPU_REQUIRED: .*needs a driver for CUDA 13\.1 or newer; this driver supports CUDA 13\.0/, 'the reason is the verdict');
    const shown = await spawnCli(['info'], { env: { SRF_TEST_DRIVER_FACTS: facts } }).output;
    t.equal(shown.code, 0, shown.stderr);
    t.match(shown.stdout, /NVIDIA driver: +yes, CUDA 13\.0, 1 GPU/);
    t.match(shown.stdout, /CUDA library: +main .*\n +kernels: +native sm_86, sm_89, sm_120, sm_121; PTX compute_75, compute_80, compute_90 \(ISA 9\.1, from CUDA 13\.1 tools\)\n +status: +not tried: it cannot run on any GPU here/);
    t.match(shown.stdout, /GPU 0: +NVIDIA H100 80GB HBM3 \(compute 9\.0\)\n +main: +cannot run: /);
    t.match(shown.stdout, /fix: +an NVIDIA driver for CUDA 13\.1 or newer/);
  }
});

t.test('requireGpu in the library: GPU_REQUIRED before any file is read', { skip: info.backend === 'cuda' ? 'a GPU is here' : false }, async (t) => {
  const world = await makeWorld(2);
  await t.rejects(VisionModel.open({ model: world.model, mmproj: world.mmproj, requireGpu: true }), { code: 'GPU_REQUIRED' });
  await t.rejects(VisionModel.open({ model: '/nonexistent.gguf', mmproj: '/nonexistent.gguf', requireGpu: true }), { code: 'GPU_REQUIRED' }, 'before the files');
  const dir = await mkdtemp(join(tmpdir(), 'srf-require-gpu-lib-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = refine({ model: world.model, mmproj: world.mmproj, images: dirname(world.images[0]!), out: join(dir, 'out'), requireGpu: true });
  const error = await run.result.catch((e: unknown) => e);
  t.ok(isSrfError(error, 'GPU_REQUIRED'), String(error));
  t.same(await readdir(dir), [], 'refine wrote nothing');
});

t.test('a run says and records what the GPU side found: the JIT note, the warning in run.json', async (t) => {
  const jitInfo = {
    ...info,
    backendWarning: '',
    cuda: {
      ...info.cuda,
      loaded: 'main' as const,
      verdicts: [{ gpu: 0, name: 'NVIDIA H100', computeCapability: '9.0', library: 'main' as const, verdict: 'jit' as const, reason: 'x', fix: 'y' }],
      kernelCache: { dir: '/home/u/.nv/ComputeCache', maxSize: '4294967296', setBySrfNative: true },
    },
  };
  const { gpuStartNotes } = await import('../lib/engine/gpu-notes.js');
  t.same(gpuStartNotes(jitInfo).map((n) => n.level), ['info']);
  t.match(gpuStartNotes(jitInfo)[0]?.message, /compiling GPU kernels for sm_90 on first use .*cached in \/home\/u\/\.nv\/ComputeCache \(CUDA_CACHE_MAXSIZE=4294967296, set by srf-native\)/);
  t.same(gpuStartNotes({ ...jitInfo, cuda: { ...jitInfo.cuda, verdicts: [{ ...jitInfo.cuda.verdicts[0]!, verdict: 'native' as const }] } }), [], 'native kernels: nothing to say');
  if (!mainLibrary || info.backend === 'cuda') return;
  const dir = await mkdtemp(join(tmpdir(), 'srf-gpu-record-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = await spawnCli(['run', '--demo', '--out', join(dir, 'out')], { env: { SRF_TEST_DRIVER_FACTS: JSON.stringify(h100(13000)) } }).output;
  t.equal(run.code, 0, run.stderr);
  t.match(run.stderr, /warning: the CUDA backend of the prebuilt llama\.cpp did not load, running on the CPU: main CUDA library not loaded: .*CUDA 13\.1/, 'the run warns before it starts');
  const { readFile } = await import('node:fs/promises');
  const manifest = JSON.parse(await readFile(join(dir, 'out', 'run.json'), 'utf8'));
  t.match(manifest.engine.gpu.backendWarning, /needs a driver for CUDA 13\.1/, 'run.json records the warning');
  t.same(manifest.engine.gpu.verdicts.map((v: { verdict: string }) => v.verdict), ['cannot-run'], 'and the verdicts');
  t.equal(manifest.engine.gpu.driverCuda, 13000);
  t.type(manifest.timings.firstImageSeconds, 'number', 'and how long the first image took');
});
