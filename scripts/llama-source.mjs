#!/usr/bin/env node
/**
 * Where llama.cpp's source comes from: the git bundle inside the node-llama-cpp package
 * (`llama/gitRelease.bundle`) and its `llama/llama.cpp.info.json`. The one place that finds it:
 * CMakeLists.txt runs this file (`--cmake`), the build script and the tests import it.
 *
 * node-llama-cpp is found the way Node finds a dependency of srf-native: the node_modules folders
 * from srf-native's own folder upwards (nested, hoisted, npx's cache), then NODE_PATH, following
 * symlinks to the real folder (pnpm). Its package.json is not in its `exports`, so
 * `require.resolve('node-llama-cpp/package.json')` cannot be used; the lookup paths are Node's own
 * (`require.resolve.paths`).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LLAMA_PACKAGE = 'node-llama-cpp';

/** The folder holding srf-native's package.json (this file lives in its scripts/). */
export function srfPackageRoot() {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}

/**
 * Finds node-llama-cpp's llama.cpp source for the srf-native package at `fromDir`.
 * Returns `{ packageDir, bundle, info, tag }`; throws an Error with `code: 'LLAMA_SOURCE_MISSING'`
 * that names every folder it looked in, or the file that is missing.
 */
export function findLlamaSource(fromDir = srfPackageRoot()) {
  const lookup = createRequire(join(resolve(fromDir), 'package.json')).resolve.paths(LLAMA_PACKAGE) ?? [];
  const packageDir = lookup.map((dir) => join(dir, LLAMA_PACKAGE)).find((dir) => existsSync(join(dir, 'package.json')));
  if (!packageDir) {
    throw missing(
      `the ${LLAMA_PACKAGE} package was not found from ${fromDir} (looked in ${lookup.join(', ')}); ` +
        `it is a dependency of srf-native that carries llama.cpp's source: reinstall srf-native (npm install)`,
    );
  }
  const real = realpathSync(packageDir);
  const bundle = join(real, 'llama', 'gitRelease.bundle');
  const info = join(real, 'llama', 'llama.cpp.info.json');
  for (const file of [bundle, info]) {
    if (!existsSync(file)) {
      throw missing(`${file} is missing: the ${LLAMA_PACKAGE} package at ${real} is incomplete; reinstall it (npm install)`);
    }
  }
  let tag;
  try {
    tag = JSON.parse(readFileSync(info, 'utf8')).tag;
  } catch (error) {
    throw missing(`${info} is not valid JSON (${error.message}): reinstall ${LLAMA_PACKAGE}`);
  }
  if (typeof tag !== 'string' || !tag) throw missing(`${info} has no llama.cpp "tag": reinstall ${LLAMA_PACKAGE}`);
  return { packageDir: real, bundle, info, tag };
}

/**
 * node-llama-cpp's prebuilt llama.cpp for this platform, built from the same release as the bundle:
 * `{ dir, packageName, release, flavor: 'cpu' | 'cuda', fallbackDir }` or `{ problem }` saying why
 * there is none (no package for the platform, another release, files missing). The packages are
 * node-llama-cpp's optional dependencies, found from its folder the way Node finds them. `gpu`:
 * 'cpu' takes the CPU package; 'cuda' and 'auto' the CUDA one where it exists (it runs on the CPU
 * too, from the same folder, when its CUDA library does not load), 'cuda' insisting.
 */
export function findPrebuilt(source = findLlamaSource(), gpu = 'auto', platform = process.platform, arch = process.arch) {
  const base = `@node-llama-cpp/${platform}-${arch}`;
  const lookup = createRequire(join(source.packageDir, 'package.json')).resolve.paths(base) ?? [];
  const find = (name) => lookup.map((d) => join(d, name)).find((d) => existsSync(join(d, 'package.json')));
  const candidates = gpu === 'cpu' ? [base] : [`${base}-cuda`, ...(gpu === 'cuda' ? [] : [base])];
  const problems = [];
  for (const packageName of candidates) {
    const packageDir = find(packageName);
    if (!packageDir) {
      problems.push(`${packageName} is not installed`);
      continue;
    }
    const flavor = packageName.endsWith('-cuda') ? 'cuda' : 'cpu';
    const bins = join(realpathSync(packageDir), 'bins', `${platform}-${arch}${flavor === 'cuda' ? '-cuda' : ''}`);
    let release;
    try {
      release = JSON.parse(readFileSync(join(bins, '_nlcBuildMetadata.json'), 'utf8')).buildOptions.llamaCpp.release;
    } catch (error) {
      problems.push(`${bins}/_nlcBuildMetadata.json is unreadable (${error.message})`);
      continue;
    }
    if (release !== source.tag) {
      problems.push(`${packageName} holds llama.cpp ${release}, the bundle is ${source.tag}`);
      continue;
    }
    const libs = [`libllama.${flavor === 'cuda' ? 'cuda.' : ''}${release}.so`, `libggml.${flavor === 'cuda' ? 'cuda.' : ''}${release}.so`, 'libggml-base.so'];
    const absent = libs.filter((f) => !existsSync(join(bins, f)));
    if (absent.length > 0) {
      problems.push(`${bins} lacks ${absent.join(', ')}`);
      continue;
    }
    const extDir = flavor === 'cuda' ? find(`${base}-cuda-ext`) : undefined;
    const fallbackDir = extDir ? join(realpathSync(extDir), 'bins', `${platform}-${arch}-cuda`, 'fallback') : '';
    return { dir: bins, packageName, release, flavor, fallbackDir: fallbackDir && existsSync(fallbackDir) ? fallbackDir : '' };
  }
  return { problem: problems.join('; ') || `no prebuilt package for ${platform}-${arch}` };
}

function missing(message) {
  const error = new Error(message);
  error.code = 'LLAMA_SOURCE_MISSING';
  return error;
}

// `node scripts/llama-source.mjs --cmake [dir]` prints `bundle;info` (a CMake list) for
// CMakeLists.txt; `--prebuilt` prints findPrebuilt's result as JSON; otherwise the source as JSON.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const cmake = args.includes('--cmake');
  const dir = args.find((a) => !a.startsWith('--'));
  try {
    const source = findLlamaSource(dir ?? srfPackageRoot());
    if (args.includes('--prebuilt')) process.stdout.write(`${JSON.stringify(findPrebuilt(source), null, 2)}\n`);
    else process.stdout.write(cmake ? `${source.bundle};${source.info}` : `${JSON.stringify(source, null, 2)}\n`);
  } catch (error) {
    process.stderr.write(`srf-native: ${error.code ?? 'ERROR'}: ${error.message}\n`);
    process.exitCode = 1;
  }
}
