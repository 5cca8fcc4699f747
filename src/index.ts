/**
 * moeclip — online continual learning of CLIP-style models with Mixture-of-Experts adapters, on ONNX Runtime.
 *
 * The library is organised by layer; each layer is exported as a namespace so that names never collide:
 *
 *   graph     ONNX graph builder, ops, reverse-mode autodiff (VJP registry), in-graph optimisers
 *   runtime   ONNX Runtime sessions in a worker thread, training state between steps, LR schedules
 *   io        safetensors, image decoding, atomic writes
 *   clip      CLIP configs, HF/open_clip weight loading, tokenizer, preprocessing, model graphs, ClipModel
 *   data      datasets, transforms, streams (class-incremental, Si-Blurry, domain, multi-dataset), replay memory
 *   methods   the continual-learning method interface and registry
 *   moe       MoE adapters: experts, routers, layout/freezing, CLIP hooks, DDAS
 *   run       the online runner and experiments
 *   evaluation  metrics (A_auc, A_last, F_last, MTIL transfer/average/last, BWT, FWT, ...)
 *   report    run folders, CSV, results tables
 *   config    run configuration files (zod schemas, YAML/JSON, overrides)
 *   pretrain  contrastive pretraining of small CLIPs
 */
export * as graph from './graph/index.ts';
export * as runtime from './runtime/index.ts';
export * as clip from './clip/index.ts';
export * as data from './data/index.ts';
export * as pretrain from './pretrain/index.ts';
export * as evaluation from './eval/metrics.ts';
export * as io from './io/index.ts';
export * as methods from './methods/index.ts';
export * as moe from './moe/index.ts';
export * as run from './run/index.ts';
export * as report from './report/index.ts';
export * as config from './config/index.ts';
export { loadLearner, exportLearner, type Learner, type LearnerPrediction } from './learner/index.ts';
export { Rng, type RngState } from './util/rng.ts';
export { ClipModel } from './clip/clip.ts';
export { ClipTokenizer } from './clip/tokenizer.ts';
export { loadClip } from './clip/load.ts';
export { runExperiment } from './run/experiment.ts';
export { loadDataset } from './data/registry.ts';
export { buildStream } from './data/streams.ts';
