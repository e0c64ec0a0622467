// A model file (this project's safetensors, or any layout --model reads) saved
// in the Hugging Face transformers layout: DIR/config.json,
// DIR/preprocessor_config.json, DIR/model.safetensors (src/nn/model.ts saveHf).
//   npx tsx scripts/to-hf.ts --model runs/x/model.safetensors --out models/x-hf
import { parseArgs } from 'node:util';
import { loadModel, saveHf } from '../src/nn/model.js';

const { values: a } = parseArgs({ options: { model: { type: 'string' }, out: { type: 'string' } } });
if (!a.model || !a.out) { console.error('usage: npx tsx scripts/to-hf.ts --model FILE --out DIR'); process.exit(2); }
const { model } = loadModel(a.model);
saveHf(a.out, model);
console.log(`wrote ${a.out}/{config.json,preprocessor_config.json,model.safetensors} (${model.cfg.name}, ${model.cfg.numClasses} classes)`);
