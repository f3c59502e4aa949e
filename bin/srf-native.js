#!/usr/bin/env node
// Thin launcher: the CLI lives in lib/cli/ (TypeScript), compiled to dist/ by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/lib/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    `srf-native: NATIVE_MISSING: the CLI is not built (${fileURLToPath(entry)} is missing). ` +
      'Run `npm run build` (or `npm install`, which builds it) in the srf-native folder.\n',
  );
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
