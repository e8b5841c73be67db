// Decode a latent vector with a vae_zoo TF.js export, in Node with pure @tensorflow/tfjs.
//
//   vae-zoo export vae.mnist_mini --out web/vae --format tfjs
//   cd tools/tfjs && npm ci && node decode.mjs ../../web/vae 0.5 -1 0 ...   (missing values are 0)
//
// Prints {"shape": [...], "mean": [...]}: the decoder's mean for z. Without tfjs-node, tfjs cannot read file://
// URLs in Node, so the model's files are read from disk and handed over with tf.io.fromMemory.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";

const [modelDir, ...given] = process.argv.slice(2);
const folder = join(modelDir, "decode");
const model = JSON.parse(readFileSync(join(folder, "model.json"), "utf8"));
const weightSpecs = model.weightsManifest.flatMap((group) => group.weights);
const weightData = tf.io.concatenateArrayBuffers(model.weightsManifest.flatMap((group) => group.paths.map((path) => {
  const bytes = readFileSync(join(folder, path));
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
})));
const graph = await tf.loadGraphModel(tf.io.fromMemory({ ...model, weightSpecs, weightData }));

// The converter renames some outputs ("Identity:0"); signatures.json, written by the export, names them again.
const names = JSON.parse(readFileSync(join(modelDir, "signatures.json"), "utf8")).decode;
const latentSize = graph.inputs[0].shape[1];
const z = tf.tensor2d([Array.from({ length: latentSize }, (_, i) => Number(given[i] ?? 0))]);
const mean = graph.execute({ [names.inputs.z]: z }, names.outputs.mean);
process.stdout.write(JSON.stringify({ shape: mean.shape, mean: Array.from(await mean.data()) }) + "\n");
