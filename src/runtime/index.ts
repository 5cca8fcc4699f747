/**
 * The runtime: ONNX Runtime sessions behind a worker thread ({@link Engine}), tensors as plain typed arrays
 * ({@link TensorData}), trainable state between steps ({@link TrainState}) and learning-rate schedules.
 * Only this folder imports onnxruntime-node (lazily, in `ort-host.ts`).
 */
export * from './types.ts';
export {
  Engine,
  EngineError,
  type EngineOptions,
  type EngineStats,
  type RunOptions,
  type SessionHandle,
  type SessionOptions,
  type OptimizationLevel,
  type OrtLogSeverity,
  type ValueInfo,
} from './engine.ts';
export {
  TrainState,
  type OptimizerKind,
  type TrainStateJSON,
  type TrainStateOptions,
  type TrainStateSnapshot,
} from './train-state.ts';
export * from './schedule.ts';
