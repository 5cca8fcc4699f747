/**
 * Messages between the {@link Engine} (main thread) and its worker (`worker.ts`), and the helpers that prepare
 * tensors for `postMessage`.
 *
 * Structured cloning a typed array copies its WHOLE backing ArrayBuffer, and transferring detaches the whole
 * buffer. A view into a larger buffer (Node's 8 KB Buffer pool, a slice of a file read) is therefore first copied
 * into an exactly sized array of its own; that copy is ours and is always transferred.
 */
import type { HostSessionOptions, SessionInfo, StorePlan } from './ort-host.ts';
import { allocTyped, ownsWholeBuffer, type TensorData, type TypedArray } from './types.ts';

/** Sent once by the worker after onnxruntime has loaded (or failed to). */
export type WorkerHello = { type: 'ready'; version: string } | { type: 'fatal'; error: SerializedError };

/** Requests from the engine; `id` pairs a request with its reply. */
export type WorkerRequest =
  | { id: number; op: 'create'; session: number; model: Uint8Array; options: HostSessionOptions }
  | { id: number; op: 'run'; session: number; feeds: Record<string, TensorData>; fetch?: string[]; plan?: StorePlan }
  | { id: number; op: 'release'; session: number }
  | { id: number; op: 'store-create'; store: number; name: string }
  | { id: number; op: 'store-put'; store: number; tensors: Record<string, TensorData> }
  | { id: number; op: 'store-delete'; store: number; names: string[] }
  | { id: number; op: 'store-get'; store: number; names: string[] }
  | { id: number; op: 'store-release'; store: number }
  | { id: number; op: 'close' };

/** Replies from the worker. */
export type WorkerReply =
  | { id: number; ok: true; value: SessionInfo | Record<string, TensorData> | null }
  | { id: number; ok: false; error: SerializedError };

/** An error reduced to what survives structured cloning with its text intact. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

/** Reduces any thrown value to a {@link SerializedError}. */
export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/**
 * Prepares tensors for `postMessage`. Returns the tensors to send (views that do not own their whole buffer are
 * replaced by exact copies) and the transfer list: the buffers of those copies, plus, when `transferOwned` is set,
 * the buffers of arrays that own them (which become detached for the sender).
 */
export function packTensors(
  tensors: Record<string, TensorData>,
  transferOwned: boolean,
): { tensors: Record<string, TensorData>; transfer: ArrayBuffer[] } {
  const out: Record<string, TensorData> = {};
  const transfer = new Set<ArrayBuffer>();
  for (const [name, t] of Object.entries(tensors)) {
    if (ownsWholeBuffer(t.data)) {
      out[name] = t;
      if (transferOwned) transfer.add(t.data.buffer as ArrayBuffer);
    } else {
      // A fresh array, never `slice()`: on a Node Buffer `slice` is a view, and transferring it would detach the
      // caller's memory.
      const copy = allocTyped(t.dtype, t.data.length);
      copy.set(t.data as never);
      out[name] = { dtype: t.dtype, dims: t.dims, data: copy };
      transfer.add(copy.buffer as ArrayBuffer);
    }
  }
  return { tensors: out, transfer: [...transfer] };
}

/**
 * Tensors handed to an in-process host, with the ownership `postMessage` would give: exact copies, or with
 * `transfer` the caller's own buffers moved (the caller's arrays become detached, as with a worker). Views that
 * do not own their whole buffer are always copied.
 */
export function adoptTensors(tensors: Record<string, TensorData>, transfer: boolean): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(tensors)) {
    let data: TypedArray;
    if (transfer && ownsWholeBuffer(t.data)) {
      data = structuredClone(t.data, { transfer: [t.data.buffer as ArrayBuffer] });
    } else {
      data = allocTyped(t.dtype, t.data.length);
      data.set(t.data as never);
    }
    out[name] = { dtype: t.dtype, dims: [...t.dims], data };
  }
  return out;
}

/** Model bytes for `postMessage`: an exact copy whose buffer can be transferred (the caller's bytes are untouched). */
export function packModel(model: Uint8Array): { model: Uint8Array; transfer: ArrayBuffer[] } {
  const copy = new Uint8Array(model.byteLength); // not `slice()`: that is a view on a Node Buffer
  copy.set(model);
  return { model: copy, transfer: [copy.buffer] };
}
