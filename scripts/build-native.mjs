#!/usr/bin/env node
// `npm run build:native`: the addon with cmake-js into build/, or, with SRF_SANITIZE=address, an
// AddressSanitizer build into build-asan/, so that a sanitizer build never replaces the normal
// one (lib/native.ts loads build/; scripts/asan-test.sh points SRF_NATIVE_ADDON at build-asan/).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const sanitize = process.env.SRF_SANITIZE ?? '';
if (sanitize !== '' && sanitize !== 'address') {
  console.error(`build-native: SRF_SANITIZE must be empty or address, not '${sanitize}'`);
  process.exit(2);
}
const out = sanitize === 'address' ? 'build-asan' : 'build';
const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--out', out, '--parallel', '2', ...process.argv.slice(2)];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
