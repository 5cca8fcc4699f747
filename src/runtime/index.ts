/**
 * The runtime: ONNX Runtime sessions behind a worker thread ({@link Engine}) with resident tensor stores,
 * tensors as plain typed arrays ({@link TensorData}), trainable state between steps ({@link TrainState}, or
 * resident in the host: {@link ResidentTrainState}), session keys and learning-rate schedules.
 * Only this folder imports onnxruntime-node (lazily, in `ort-host.ts`).
 */
export * from './types.ts';
export {
  Engine,
  EngineError,
  type EngineOptions,
  type EngineStats,
  type PutOptions,
  type RunOptions,
  type SessionHandle,
  type SessionOptions,
  type StoreHandle,
  type StoreTensorInfo,
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
export {
  ResidentTrainState,
  type ResidentStepOptions,
  type ResidentTrainStateOptions,
  type ResidentTrainStateSnapshot,
} from './resident-state.ts';
export { sessionKey, SESSION_KEY_MAX } from './session-key.ts';
export * from './schedule.ts';
