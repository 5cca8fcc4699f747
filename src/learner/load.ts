/**
 * `loadLearner(dir)`: a learner folder (a run's `final/` or a `moeclip export`) back as a classifier. The method
 * is rebuilt through the registry with the saved options and loads the saved state (no replay memory); the model
 * is `dir/backbone/` when the folder holds a copy, else the referenced folder, checked against the saved sha256.
 * Predictions go through the method's end-of-task evaluation path in chunks of the run's `evalBatchSize`, so they
 * are the run's final evaluation's for the same images.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Image } from '../data/types.ts';
import { CLIP_RESOURCES, ClipResources } from '../methods/clip-resources.ts';
import type { FeatureFn, Method, StreamView } from '../methods/method.ts';
import { createMethod } from '../methods/registry.ts';
import { canSaveState, readMethodState } from '../methods/state.ts';
import { Rng } from '../util/rng.ts';
import { BACKBONE_DIR, checkModel, readLearnerInfo, STATE_BASE, type LearnerInfo } from './format.ts';
import { learnerPredictContext, predictDetailed, probOfLabel } from './predict.ts';

/** One image's prediction. */
export interface LearnerPrediction {
  /** Global label (-1: the method abstained, e.g. NCM without a mean among the candidates). */
  label: number;
  /** Its class name (null when abstaining). */
  name: string | null;
  /** Probability of `label` among the candidates (null when abstaining or for a method without probabilities). */
  prob: number | null;
  /** Router (subnet) that answered; `zero-shot` when DDAS sent the image to plain CLIP; null without routing. */
  route: number | 'zero-shot' | null;
  /** Probabilities over the candidates, in their order (null for a method without probabilities). */
  probs: number[] | null;
}

export interface LoadLearnerOptions {
  /** ONNX Runtime intra-op threads of the learner's own engine (default: all cores); ignored with `resources`. */
  threads?: number;
  /** Shared CLIP resources (not disposed by the learner). */
  resources?: ClipResources;
  /** Feature extractors for an `ncm` learner on named features (as the run's `env.featureFns`). */
  featureFns?: Readonly<Record<string, FeatureFn>>;
}

export interface Learner {
  readonly dir: string;
  readonly info: LearnerInfo;
  readonly method: Method;
  readonly classNames: readonly string[];
  /** The default candidates: the classes exposed by the end of the run. */
  readonly candidates: readonly number[];
  /** The model folder in use (null for a method without a model). */
  readonly modelDir: string | null;
  /** Predicts each image among `candidates` (default: {@link candidates}). */
  predict(images: Image[], opts?: { candidates?: readonly number[] }): Promise<LearnerPrediction[]>;
  /** Releases the method and the engine. */
  dispose(): Promise<void>;
}

/** The model folder a learner uses: its `backbone/` copy, else the reference; both checked against the sha256. */
export function learnerModelDir(dir: string, info: LearnerInfo): string | null {
  if (!info.model) return null;
  const copy = join(dir, BACKBONE_DIR);
  if (existsSync(copy)) {
    checkModel(copy, info.model, "the learner's backbone copy");
    return copy;
  }
  if (!existsSync(info.model.path)) {
    throw new Error(`the learner's model folder ${info.model.path} is missing (a folder exported with --copy-backbone keeps its own copy)`);
  }
  checkModel(info.model.path, info.model, "the learner's model folder");
  return info.model.path;
}

/** The stream facts a learner's method sees (class names, templates, stream kind). */
export function learnerView(info: LearnerInfo): StreamView {
  return { classNames: info.classNames, templatesFor: (l) => info.templates.sets[info.templates.ofClass[l]!] ?? [], kind: info.streamKind };
}

function checkCandidates(c: readonly number[], numClasses: number): void {
  if (c.length === 0) throw new Error('candidates: expected at least one label');
  const seen = new Set<number>();
  for (const l of c) {
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) throw new Error(`candidates: ${l} is not a label (0..${numClasses - 1})`);
    if (seen.has(l)) throw new Error(`candidates: label ${l} is listed twice`);
    seen.add(l);
  }
}

/** Loads the learner folder `dir` (see the module doc). */
export async function loadLearner(dir: string, opts: LoadLearnerOptions = {}): Promise<Learner> {
  const abs = resolve(dir);
  const info = readLearnerInfo(abs);
  const modelDir = learnerModelDir(abs, info);
  const state = readMethodState(abs, STATE_BASE);
  const own = opts.resources ? null : new ClipResources(opts.threads !== undefined ? { threads: opts.threads } : {});
  const resources = opts.resources ?? own!;
  const view = learnerView(info);
  const options = { ...info.method.options, ...(modelDir !== null ? { model: modelDir } : {}) };
  let method: Method | null = null;
  try {
    method = await createMethod(info.method.name, options, {
      stream: view,
      rng: new Rng(info.run?.seed ?? 0),
      resources: { [CLIP_RESOURCES]: resources },
      ...(opts.featureFns ? { featureFns: opts.featureFns } : {}),
    });
    if (!canSaveState(method)) throw new Error(`method '${info.method.name}' cannot load a saved state (no saveState/loadState)`);
    await method.loadState(state, {
      memory: null,
      resolveItem: (ref) => {
        throw new Error(`${abs}: the saved state refers to the stream sample ${JSON.stringify(ref)}, which a learner does not have`);
      },
    });
  } catch (e) {
    await method?.dispose?.();
    await own?.dispose();
    throw new Error(`${abs}: cannot load the learner: ${(e as Error).message}`);
  }
  const m = method;
  const bs = info.evalBatchSize;
  let disposed = false;
  return {
    dir: abs,
    info,
    method: m,
    classNames: info.classNames,
    candidates: info.candidates,
    modelDir,
    async predict(images, popts = {}) {
      if (disposed) throw new Error('learner: already disposed');
      const cands = [...(popts.candidates ?? info.candidates)];
      checkCandidates(cands, info.classNames.length);
      const ctx = learnerPredictContext(view, cands);
      const out: LearnerPrediction[] = [];
      const C = cands.length;
      for (let a = 0; a < images.length; a += bs) {
        const d = await predictDetailed(m, images.slice(a, a + bs), cands, ctx);
        d.labels.forEach((label, i) => {
          const r = d.routes ? d.routes[i]! : null;
          out.push({
            label,
            name: label >= 0 ? (info.classNames[label] ?? null) : null,
            prob: probOfLabel(d, i, cands),
            route: r === null ? null : r < 0 ? 'zero-shot' : r,
            probs: d.probs ? Array.from(d.probs.subarray(i * C, (i + 1) * C)) : null,
          });
        });
      }
      return out;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await m.dispose?.();
      await own?.dispose();
    },
  };
}
