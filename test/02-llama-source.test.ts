// Where the build finds llama.cpp's source (node-llama-cpp's bundle) and how it is told to build:
// scripts/llama-source.mjs and scripts/build-native.mjs, on package layouts made in a temp folder.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
// @ts-expect-error: plain ESM scripts (they run before TypeScript is compiled), no declarations
import { findLlamaSource, findPrebuilt } from '../scripts/llama-source.mjs';
// @ts-expect-error: as above
import { buildOptions, cmakeJsArgs, describeBuild, describePrebuiltBuild, detectCudaArchitectures, llamaOrigin, missingTools } from '../scripts/build-native.mjs';
import { tempDir } from './helpers/fixtures.js';
import { ROOT } from './helpers/cli.js';

/** A package folder with a package.json; node-llama-cpp also gets its llama/ files unless told not to. */
async function pkg(dir: string, name: string, { bundle = true, info = true } = {}): Promise<string> {
  await mkdir(join(dir, 'llama'), { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, version: '3.21.1' }));
  if (name === 'node-llama-cpp') {
    if (bundle) await writeFile(join(dir, 'llama', 'gitRelease.bundle'), 'bundle');
    if (info) await writeFile(join(dir, 'llama', 'llama.cpp.info.json'), JSON.stringify({ tag: 'v0.4.0' }));
  }
  return dir;
}

t.test('hoisted: node-llama-cpp beside srf-native in the project node_modules', async (t) => {
  const project = await tempDir();
  const srf = await pkg(join(project, 'node_modules', 'srf-native'), 'srf-native');
  const llama = await pkg(join(project, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  const found = findLlamaSource(srf);
  t.equal(found.packageDir, realpathSync(llama));
  t.equal(found.bundle, join(realpathSync(llama), 'llama', 'gitRelease.bundle'));
  t.equal(found.tag, 'v0.4.0');
});

t.test('nested: srf-native/node_modules wins over a hoisted copy, as in Node', async (t) => {
  const project = await tempDir();
  const srf = await pkg(join(project, 'node_modules', 'srf-native'), 'srf-native');
  await pkg(join(project, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  const nested = await pkg(join(srf, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  t.equal(findLlamaSource(srf).packageDir, realpathSync(nested));
});

t.test("symlinked (pnpm's layout): the link is followed to the real folder", async (t) => {
  const project = await tempDir();
  const store = await pkg(join(project, 'node_modules', '.pnpm', 'node-llama-cpp@3.21.1', 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  const srf = await pkg(join(project, 'node_modules', '.pnpm', 'srf-native@0.1.0', 'node_modules', 'srf-native'), 'srf-native');
  // pnpm links a package's dependencies next to it inside the store
  await symlink(store, join(project, 'node_modules', '.pnpm', 'srf-native@0.1.0', 'node_modules', 'node-llama-cpp'), 'dir');
  const found = findLlamaSource(srf);
  t.equal(found.packageDir, realpathSync(store));
  t.equal(found.info, join(realpathSync(store), 'llama', 'llama.cpp.info.json'));
});

t.test('a clone: the repository root finds its own node_modules', async (t) => {
  const found = findLlamaSource(ROOT);
  t.equal(found.packageDir, realpathSync(join(ROOT, 'node_modules', 'node-llama-cpp')));
  t.match(found.tag, /^v\d/);
});

t.test('missing or incomplete: one coded error that names what is missing', async (t) => {
  const project = await tempDir();
  const srf = await pkg(join(project, 'node_modules', 'srf-native'), 'srf-native');
  t.throws(() => findLlamaSource(srf), {
    code: 'LLAMA_SOURCE_MISSING',
    message: new RegExp(`node-llama-cpp package was not found .*${join(project, 'node_modules').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
  });
  await pkg(join(project, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp', { bundle: false });
  t.throws(() => findLlamaSource(srf), { code: 'LLAMA_SOURCE_MISSING', message: /gitRelease\.bundle is missing/ });
  await writeFile(join(project, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle'), 'bundle');
  await writeFile(join(project, 'node_modules', 'node-llama-cpp', 'llama', 'llama.cpp.info.json'), '{ not json');
  t.throws(() => findLlamaSource(srf), { code: 'LLAMA_SOURCE_MISSING', message: /llama\.cpp\.info\.json is not valid JSON/ });
});

t.test('build options: every core by default, SRF_BUILD_JOBS and flags override, bad values refused', async (t) => {
  t.equal(buildOptions([], {}).jobs, availableParallelism());
  t.equal(buildOptions([], { SRF_BUILD_JOBS: '3' }).jobs, 3);
  t.equal(buildOptions(['--jobs', '5'], { SRF_BUILD_JOBS: '3' }).jobs, 5);
  t.equal(buildOptions([], {}).gpu, 'auto');
  t.equal(buildOptions([], { SRF_GPU: 'cpu' }).gpu, 'cpu');
  t.equal(buildOptions(['--gpu=cuda'], { SRF_GPU: 'cpu' }).gpu, 'cuda');
  t.throws(() => buildOptions(['--gpu', 'metal'], {}), /must be one of auto, cuda, cpu, not 'metal'/);
  t.throws(() => buildOptions([], { SRF_BUILD_JOBS: 'many' }), /SRF_BUILD_JOBS\) must be a whole number/);
  t.throws(() => buildOptions(['--jobs', '0'], {}), /must be a whole number >= 1/);

  const args = cmakeJsArgs(buildOptions(['--gpu', 'cuda', '--jobs', '16'], { CMAKE_CUDA_ARCHITECTURES: '90' }), 'build');
  t.same(args, {
    configure: ['configure', '--out', 'build', '--CDSRF_GPU=cuda', '--CDSRF_LLAMA_FROM=source', '--CDCMAKE_CUDA_ARCHITECTURES=90'],
    build: ['build', '--out', 'build', '--parallel', '16'],
  });
  const prebuilt = { from: 'prebuilt', prebuilt: { dir: '/p/bins', fallbackDir: '/f' } };
  t.same(cmakeJsArgs(buildOptions(['--jobs', '2'], {}), 'build', prebuilt).configure.slice(3), ['--CDSRF_GPU=auto', '--CDSRF_LLAMA_FROM=prebuilt', '--CDSRF_LLAMA_PREBUILT_DIR=/p/bins', '--CDSRF_LLAMA_PREBUILT_FALLBACK=/f']);
  t.equal(buildOptions(['--out', 'build-source'], {}).out, 'build-source');
});

t.test('CUDA architectures: --cuda-arch, CMAKE_CUDA_ARCHITECTURES, else the GPUs nvidia-smi sees; nothing on a prebuilt build', async (t) => {
  t.equal(buildOptions(['--cuda-arch', '80,90'], {}).cudaArchitectures, '80;90');
  t.equal(buildOptions(['--cuda-arch=90a'], { CMAKE_CUDA_ARCHITECTURES: '86' }).cudaArchitectures, '90a', 'the flag wins');
  t.throws(() => buildOptions(['--cuda-arch', 'sm_90'], {}), /--cuda-arch takes compute capabilities as CMake writes them, comma-separated \(80,90/);
  // A stand-in nvidia-smi that reports an H100 and two A100s, as `--query-gpu=compute_cap` prints them.
  const bin = await mkdtemp(join(tmpdir(), 'srf-smi-'));
  t.teardown(() => rm(bin, { recursive: true, force: true }));
  await writeFile(join(bin, 'nvidia-smi'), '#!/bin/sh\n[ "$1" = "--query-gpu=compute_cap" ] && printf "9.0\\n8.0\\n8.0\\n"\n', { mode: 0o755 });
  const env = { PATH: `${bin}:/usr/bin:/bin` };
  t.same(detectCudaArchitectures(env), ['90', '80']);
  const seen = buildOptions(['--from-source', '--gpu', 'cuda'], env);
  t.equal(seen.cudaArchitectures, '90;80', 'a source build for CUDA builds for the GPUs it sees');
  t.equal(seen.cudaArchSource, 'the GPUs nvidia-smi sees');
  t.match(describeBuild(seen, env).join('\n'), /CUDA architectures: 90;80 \(the GPUs nvidia-smi sees\)/);
  t.equal(buildOptions(['--gpu', 'cuda'], env).cudaArchitectures, '', 'the prebuilt library is not built for any architecture');
  t.equal(buildOptions(['--from-source', '--gpu', 'cpu'], env).cudaArchitectures, '', 'nor a CPU build');
  const prebuilt = { from: 'prebuilt', prebuilt: { dir: '/p/bins', fallbackDir: '/f', flavor: 'cuda', release: 'v0.4.0', packageName: '@node-llama-cpp/linux-x64-cuda' } };
  const asked = buildOptions(['--gpu', 'cuda'], { CMAKE_CUDA_ARCHITECTURES: '90' });
  t.notOk(cmakeJsArgs(asked, 'build', prebuilt).configure.some((a) => a.includes('CUDA_ARCHITECTURES')), 'not passed to a prebuilt build');
  t.match(describePrebuiltBuild(asked, prebuilt.prebuilt, {}).join('\n'), /CMAKE_CUDA_ARCHITECTURES \(90\) does nothing here: the prebuilt library's kernels are fixed; `npx srf-native build --from-source --gpu cuda` builds for your GPUs/);
});

t.test('the build says what it builds before it starts', async (t) => {
  const lines = describeBuild(buildOptions(['--gpu', 'cpu', '--jobs', '2'], {}), { PATH: '' }).join('\n');
  t.match(lines, /backend: CPU/);
  t.match(lines, /jobs: 2 \(SRF_BUILD_JOBS to change\)/);
  t.match(lines, /ccache: not found/);
  t.match(lines, /expect about \d+ min for a first build/);
});

t.test('missing tools are named with how to get them', async (t) => {
  const problems = missingTools({ PATH: '/nonexistent' }).join('\n');
  t.match(problems, /cmake >= 3\.19/);
  t.match(problems, /C\+\+17 compiler/);
  t.match(problems, /git/);
  t.same(missingTools(process.env), [], 'this machine has all it needs');
});

/** node-llama-cpp's prebuilt package for linux-x64 (`-cuda` for the CUDA one) with its libraries' names. */
async function prebuiltPkg(project: string, flavor: 'cpu' | 'cuda', release = 'v0.4.0'): Promise<string> {
  const name = `linux-x64${flavor === 'cuda' ? '-cuda' : ''}`;
  const dir = join(project, 'node_modules', '@node-llama-cpp', name);
  const bins = join(dir, 'bins', name);
  await mkdir(bins, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: `@node-llama-cpp/${name}`, version: '3.21.1' }));
  await writeFile(join(bins, '_nlcBuildMetadata.json'), JSON.stringify({ buildOptions: { llamaCpp: { release } } }));
  const tag = flavor === 'cuda' ? 'cuda.' : '';
  for (const f of [`libllama.${tag}${release}.so`, `libggml.${tag}${release}.so`, 'libggml-base.so']) await writeFile(join(bins, f), '');
  return realpathSync(bins);
}

t.test("prebuilt llama.cpp: node-llama-cpp's platform package of the bundle's release, CUDA first, else from source and why", async (t) => {
  const project = await tempDir();
  const srf = await pkg(join(project, 'node_modules', 'srf-native'), 'srf-native');
  await pkg(join(project, 'node_modules', 'node-llama-cpp'), 'node-llama-cpp');
  const source = findLlamaSource(srf);
  t.match(findPrebuilt(source, 'auto', 'linux', 'x64'), { problem: /@node-llama-cpp\/linux-x64-cuda is not installed; @node-llama-cpp\/linux-x64 is not installed/ });
  const cpu = await prebuiltPkg(project, 'cpu');
  t.match(findPrebuilt(source, 'auto', 'linux', 'x64'), { dir: cpu, flavor: 'cpu', release: 'v0.4.0' }, 'only the CPU package: that one');
  const cuda = await prebuiltPkg(project, 'cuda');
  t.match(findPrebuilt(source, 'auto', 'linux', 'x64'), { dir: cuda, flavor: 'cuda' }, 'the CUDA package where there is one (it runs on the CPU too)');
  t.match(findPrebuilt(source, 'cpu', 'linux', 'x64'), { dir: cpu, flavor: 'cpu' }, '--gpu cpu: the CPU package');
  t.match(findPrebuilt(source, 'auto', 'darwin', 'arm64'), { problem: /darwin-arm64/ }, 'no package for the platform');
  await prebuiltPkg(project, 'cuda', 'v0.3.9');
  await prebuiltPkg(project, 'cpu', 'v0.3.9');
  t.match(findPrebuilt(source, 'cuda', 'linux', 'x64'), { problem: /holds llama\.cpp v0\.3\.9, the bundle is v0\.4\.0/ }, 'another release is refused');
  const options = buildOptions([], {});
  t.match(llamaOrigin(options, source), { from: 'source', why: /no usable prebuilt llama\.cpp: .*v0\.3\.9/ });
  t.match(llamaOrigin(buildOptions(['--from-source'], {}), source), { from: 'source', why: /asked for/ });
  t.match(llamaOrigin(buildOptions([], { SRF_SANITIZE: 'address' }), source), { from: 'source', why: /address sanitizer/ });
  t.match(llamaOrigin(buildOptions([], {}), findLlamaSource(ROOT)), { from: 'prebuilt', prebuilt: { release: findLlamaSource(ROOT).tag } }, 'this clone: prebuilt');
  const lines = describePrebuiltBuild(options, { release: 'v0.4.0', packageName: '@node-llama-cpp/linux-x64-cuda', dir: cuda, flavor: 'cuda' }, { PATH: '' }).join('\n');
  t.match(lines, /building the engine .*\n\s+backend: CUDA where its library loads .*\n\s+CUDA architectures: .*\n\s+jobs: \d+/, 'the same first lines as a source build');
  t.match(lines, /llama\.cpp: prebuilt v0\.4\.0 from @node-llama-cpp\/linux-x64-cuda/);
});
