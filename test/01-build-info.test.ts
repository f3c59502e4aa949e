// The addon says what it was built with and which devices it sees.
import t from 'tap';
import { buildInfo } from '../lib/index.js';

t.test('build info', async (t) => {
  const info = buildInfo();
  t.match(info.backend, /^(cpu|cuda)$/);
  t.match(info.gpuChoice, /^(auto|cpu|cuda)$/);
  t.match(info.llamaCppVersion, /^v\d+\.\d+\.\d+/);
  t.ok(info.devices.length >= 1, 'at least the CPU');
  t.ok(info.devices.some((d) => d.type === 'cpu'));
  t.equal(info.supportsGpuOffload, info.backend === 'cuda', 'GPU offload exactly when built with CUDA');
  if (info.gpuChoice === 'cuda' && info.llamaCppFrom === 'source') t.equal(info.backend, 'cuda', 'a forced CUDA build is a CUDA build');
  t.match(info.llamaCppFrom, /^(prebuilt|source)$/);
  t.ok(info.backends.includes('CPU'), `the CPU backend is there: ${info.backends.join(', ')}`);
  if (info.llamaCppFrom === 'prebuilt') {
    t.match(info.prebuiltDir, /@node-llama-cpp[\\/][a-z0-9-]+[\\/]bins/, 'the prebuilt libraries come from node-llama-cpp\'s package');
    // A prebuilt build says what runs: CUDA only where its CUDA library loaded and found a GPU.
    t.equal(info.backend === 'cuda', info.devices.some((d) => d.type === 'gpu'));
    // The CPU variant named is one of the package's libraries, the one ggml mapped in.
    const { existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    t.match(info.cpuVariant, /^[a-z0-9]+$/, `a CPU variant is named: ${info.cpuVariant}`);
    t.ok(existsSync(join(info.prebuiltDir, `libggml-cpu-${info.cpuVariant}.so`)), `libggml-cpu-${info.cpuVariant}.so is in the package`);
    const { backendsLine } = await import('../lib/cli/info.js');
    t.match(backendsLine(info), new RegExp(`CPU \\(${info.cpuVariant}\\)`), 'info says which');
  } else {
    t.equal(info.prebuiltDir, '');
    t.equal(info.cpuVariant, '', 'a source build compiles its CPU code in');
  }
  t.type(info.backendWarning, 'string');
});

t.test('an engine that is missing or built for another machine: NATIVE_MISSING with the build command', async (t) => {
  const { spawnCli } = await import('./helpers/cli.js');
  const { tempDir } = await import('./helpers/fixtures.js');
  const { writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const dir = await tempDir();
  const foreign = join(dir, 'srf_native.node');
  await writeFile(foreign, 'not a shared object: as if built for another system');
  for (const [addon, why] of [
    [join(dir, 'absent.node'), /is not built .*install script did not run/],
    [foreign, /failed to load .*built for another machine, system or Node\.js/],
  ] as const) {
    const child = spawnCli(['info'], { env: { SRF_NATIVE_ADDON: addon } });
    const result = await child.output;
    t.equal(result.code, 2, 'exit 2');
    t.match(result.stderr, /^srf-native: NATIVE_MISSING: /);
    t.match(result.stderr, why);
    t.match(result.stderr, /`npx srf-native build`/, 'names the command that fixes it');
  }
});

t.test('prebuilt with the CUDA package on a machine where its CUDA library cannot load: the CPU, and why', async (t) => {
  const info = buildInfo();
  const { existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  if (info.llamaCppFrom !== 'prebuilt' || !existsSync(join(info.prebuiltDir, 'libggml-cuda.so')) || info.devices.some((d) => d.type === 'gpu')) {
    t.skip('needs the prebuilt CUDA package and no usable GPU');
    return;
  }
  const { spawnCli } = await import('./helpers/cli.js');
  // As a user with an NVIDIA driver but without the CUDA 13 libraries sees it.
  const child = spawnCli(['info', '--json'], { env: { SRF_ASSUME_NVIDIA_DRIVER: '1' } });
  const result = await child.output;
  t.equal(result.code, 0, result.stderr);
  const told = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as { backend: string; backends: string[]; backendWarning: string };
  t.equal(told.backend, 'cpu', 'it runs on the CPU');
  t.same(told.backends, ['CPU']);
  t.match(told.backendWarning, /CUDA backend of the prebuilt llama\.cpp did not load, running on the CPU: .*lib(cudart|cublas|cuda)\.so/, 'and says which library is missing');
  t.equal(info.backendWarning, '', 'without a driver nothing is said');
  // And a run says it too, before it spends hours on the CPU.
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const out = await mkdtemp(join(tmpdir(), 'srf-cuda-warning-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const run = await spawnCli(['run', '--demo', '--out', join(out, 'demo')], { env: { SRF_ASSUME_NVIDIA_DRIVER: '1' } }).output;
  t.equal(run.code, 0, run.stderr);
  t.match(run.stderr, /srf-native: warning: the CUDA backend of the prebuilt llama\.cpp did not load, running on the CPU: .*lib(cudart|cublas|cuda)\.so/, 'the run warns');
});
