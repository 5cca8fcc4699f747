import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** A unique hidden sibling path of `path` (same folder, so that a rename stays on one file system). */
function siblingTemp(path: string, tag = ''): string {
  return join(dirname(path), `.${basename(path)}.${tag ? `${tag}.` : ''}${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
}

/**
 * Writes a file so that readers never see it half-written: the bytes go to a temporary file in the same
 * folder, which is then renamed over the target. The folder is created if needed.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = siblingTemp(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Atomic JSON write with two-space indentation and a trailing newline. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Writes a whole folder so that `dir` is never seen half-written: `fill` writes the files into a fresh temporary
 * sibling folder, which is then renamed to `dir`. An existing `dir` is replaced (all its contents go) only once
 * the new folder is complete: it is renamed aside, the new folder renamed into place, and the old one deleted.
 * If `fill` throws, the temporary folder is removed and `dir` is left as it was. (A crash between the two renames
 * leaves no `dir` at all, with both the old and the new folder as hidden siblings — never a partial one.)
 */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void): void {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = siblingTemp(dir, 'new');
  mkdirSync(tmp);
  try {
    fill(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = existsSync(dir) ? siblingTemp(dir, 'old') : null;
  let setAside = false;
  try {
    if (old !== null) {
      renameSync(dir, old);
      setAside = true;
    }
    renameSync(tmp, dir);
  } catch (e) {
    if (setAside) renameSync(old!, dir);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (old !== null) rmSync(old, { recursive: true, force: true });
}
