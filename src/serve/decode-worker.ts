// The decode worker of src/serve/decode.ts: PNG/JPEG bytes in, the model's
// preprocessed input out (decodeImage + imageToInput, as the server's own
// thread would compute them: the same bits). An ImageError comes back as
// its message without the file prefix, to be rebuilt on the server's side.
import { parentPort } from 'node:worker_threads';
import { decodeImage, ImageError } from '../io/image.js';
import { imageToInput } from '../data/preprocess.js';
import type { VitConfig } from '../nn/presets.js';

export interface DecodeJob { id: number; bytes: Uint8Array; cfg: VitConfig; maxPixels: number }
export type DecodeReply = { id: number; x: Float32Array } | { id: number; error: string; image: boolean };

parentPort!.on('message', (job: DecodeJob) => {
  let reply: DecodeReply, transfer: ArrayBuffer[] = [];
  try {
    const x = imageToInput(decodeImage(job.bytes, 'upload', { maxPixels: job.maxPixels }), job.cfg, 'upload');
    reply = { id: job.id, x };
    transfer = [x.buffer as ArrayBuffer];
  } catch (e) {
    const image = e instanceof ImageError;
    reply = { id: job.id, error: image ? (e as ImageError).message.slice((e as ImageError).file.length + 2) : String((e as Error)?.message ?? e), image };
  }
  parentPort!.postMessage(reply, transfer);
});
