/** srf-native's version, from its package.json (recorded in run.json and the report). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../engine/native.js';

let version: string | undefined;

export function toolVersion(): string {
  if (version === undefined) {
    try {
      version = String(JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
