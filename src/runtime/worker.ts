/**
 * Worker-thread entry of the {@link Engine}: owns an {@link OrtHost} and serves {@link WorkerRequest}s from the
 * main thread. `session.run` blocks this thread, not the main event loop (engine-notes pitfall 7).
 * Output tensors and store copies are transferred back (they are fresh arrays nobody else holds); tensors put
 * into a store arrive as the worker's own copies, so the store keeps them as they are.
 */
import { parentPort } from 'node:worker_threads';
import { OrtHost, type SessionInfo } from './ort-host.ts';
import {
  packTensors,
  serializeError,
  type WorkerHello,
  type WorkerReply,
  type WorkerRequest,
} from './protocol.ts';
import type { TensorData } from './types.ts';

const port = parentPort;
if (!port) throw new Error('src/runtime/worker.ts must run in a worker thread (it is started by Engine)');

async function serve(host: OrtHost, req: WorkerRequest): Promise<{ value: SessionInfo | Record<string, TensorData> | null; transfer: ArrayBuffer[] }> {
  switch (req.op) {
    case 'create':
      return { value: await host.create(req.session, req.model, req.options), transfer: [] };
    case 'run': {
      const outputs = await host.run(req.session, req.feeds, req.fetch, req.plan);
      const packed = packTensors(outputs, true);
      return { value: packed.tensors, transfer: packed.transfer };
    }
    case 'release':
      await host.release(req.session);
      return { value: null, transfer: [] };
    case 'store-create':
      await host.createStore(req.store, req.name);
      return { value: null, transfer: [] };
    case 'store-put':
      await host.putTensors(req.store, req.tensors);
      return { value: null, transfer: [] };
    case 'store-delete':
      await host.deleteTensors(req.store, req.names);
      return { value: null, transfer: [] };
    case 'store-get': {
      const packed = packTensors(await host.getTensors(req.store, req.names), true);
      return { value: packed.tensors, transfer: packed.transfer };
    }
    case 'store-release':
      await host.releaseStore(req.store);
      return { value: null, transfer: [] };
    case 'close':
      await host.releaseAll();
      return { value: null, transfer: [] };
  }
}

let host: OrtHost;
try {
  host = await OrtHost.load();
} catch (e) {
  port.postMessage({ type: 'fatal', error: serializeError(e) } satisfies WorkerHello);
  throw e;
}

port.on('message', (req: WorkerRequest) => {
  serve(host, req).then(
    ({ value, transfer }) => port.postMessage({ id: req.id, ok: true, value } satisfies WorkerReply, transfer),
    (e: unknown) => port.postMessage({ id: req.id, ok: false, error: serializeError(e) } satisfies WorkerReply),
  );
});
port.postMessage({ type: 'ready', version: host.version } satisfies WorkerHello);
