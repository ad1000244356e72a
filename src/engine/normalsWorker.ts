/**
 * The worker side of `normalsAhead.ts`: continues a generator from the state it is sent, draws
 * into a fresh buffer and hands that buffer back (moved, not copied) on the reply port, then
 * raises the control word the caller waits on. It runs `Rng.fillNormal` itself, so its numbers
 * are those the calling thread would draw.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import { Rng } from './random.js';
import { meanOverGroups } from './groupMean.js';
import { CONTROL_DONE, CONTROL_FAILED, type NormalsRequest, type NormalsReply } from './normalsAhead.js';

let reply: MessagePort | null = null;
let control: Int32Array | null = null;

parentPort!.on('message', (msg: NormalsRequest | { reply: MessagePort; control: SharedArrayBuffer }) => {
  if ('reply' in msg) {
    reply = msg.reply;
    control = new Int32Array(msg.control);
    return;
  }
  let status = CONTROL_DONE;
  try {
    const out = new Float32Array(msg.count);
    Rng.fromState(msg.state).fillNormal(out);
    const mean = msg.meanOver > 0 ? meanOverGroups(out, msg.meanOver) : null;
    reply!.postMessage({ id: msg.id, out, mean } satisfies NormalsReply, mean ? [out.buffer as ArrayBuffer, mean.buffer as ArrayBuffer] : [out.buffer as ArrayBuffer]);
  } catch {
    status = CONTROL_FAILED;
  }
  Atomics.store(control!, 0, status);
  Atomics.notify(control!, 0);
});
