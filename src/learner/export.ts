/**
 * `exportLearner(runDir, outDir)`: the learner a finished run kept in `final/`, copied into a folder of its own
 * (written whole or not at all: a temporary sibling folder renamed into place). The backbone stays a reference
 * (path + sha256, checked here and at load time) or, with `copyBackbone`, is copied into `outDir/backbone/` so
 * the folder is self-contained.
 */
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { writeDirAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { assertFinishedRun } from '../run/checkpoint.ts';
import { FINAL_DIR } from '../run/final.ts';
import { BACKBONE_DIR, checkModel, LEARNER_FILE, PREDICTIONS_FILE, readLearnerInfo, STATE_BASE, type LearnerInfo } from './format.ts';

export interface ExportOptions {
  /** Copy the model folder into `outDir/backbone/` (default: keep the reference). */
  copyBackbone?: boolean;
  /** Replace an existing non-empty `outDir`. */
  overwrite?: boolean;
}

export interface ExportResult {
  dir: string;
  info: LearnerInfo;
  /** The copied model folder, or null (reference only, or no model). */
  backbone: string | null;
}

/** The method name of a run folder's config.resolved.json (null when unreadable). */
function runMethodName(runDir: string): string | null {
  try {
    const j = JSON.parse(readFileSync(join(runDir, 'config.resolved.json'), 'utf8')) as { method?: { name?: unknown } };
    return typeof j.method?.name === 'string' ? j.method.name : null;
  } catch {
    return null;
  }
}

/** Exports the learner of the finished run `runDir` to `outDir` (see the module doc); errors say what is wrong. */
export function exportLearner(runDir: string, outDir: string, opts: ExportOptions = {}): ExportResult {
  const run = resolve(runDir);
  const out = resolve(outDir);
  assertFinishedRun(run);
  const final = join(run, FINAL_DIR);
  if (!existsSync(join(final, LEARNER_FILE))) {
    const name = runMethodName(run);
    throw new Error(
      `${run}: no learner to export (no ${FINAL_DIR}/${LEARNER_FILE}): the run's method${name ? ` '${name}'` : ''} cannot save its state ` +
        `(no saveState/loadState), or the run was written before moeclip kept final learners`,
    );
  }
  const rel = relative(run, out);
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    throw new Error(`--out ${out}: the export must go outside the run folder ${run}`);
  }
  if (existsSync(out) && (!statSync(out).isDirectory() || readdirSync(out).length > 0) && !opts.overwrite) {
    throw new Error(`--out ${out} already exists and is not empty; choose another folder or pass --overwrite`);
  }
  const info = readLearnerInfo(final);
  if (info.model) checkModel(info.model.path, info.model, "the run's model folder");
  const copy = opts.copyBackbone === true && info.model !== null;
  const next: LearnerInfo = { ...info, backbone: copy ? BACKBONE_DIR : null, exportedFrom: run };
  writeDirAtomic(out, (tmp) => {
    for (const f of [`${STATE_BASE}.safetensors`, `${STATE_BASE}.json`, PREDICTIONS_FILE]) copyFileSync(join(final, f), join(tmp, f));
    if (copy) {
      cpSync(info.model!.path, join(tmp, BACKBONE_DIR), { recursive: true });
      checkModel(join(tmp, BACKBONE_DIR), info.model!, 'the copied backbone');
    }
    writeJsonAtomic(join(tmp, LEARNER_FILE), next);
  });
  return { dir: out, info: next, backbone: copy ? join(out, BACKBONE_DIR) : null };
}
