// Run one signature of a vae_zoo TF.js export in Node with pure @tensorflow/tfjs (no native tfjs-node).
//
//   node tfjs_run.mjs MODEL_DIR SIGNATURE < request.json > answer.json
//
// request: {"z": {"shape": [2, 20], "dtype": "float32", "base64": "<little-endian bytes>"}}; the answer names each output as the
// SavedModel does ("mean", "valid"), from MODEL_DIR/signatures.json. @tensorflow/tfjs has no file:// loader in
// Node without tfjs-node, so fileHandler below reads model.json and its weight files from disk.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";

export function fileHandler(modelJsonPath) {
  return {
    async load() {
      const model = JSON.parse(readFileSync(modelJsonPath, "utf8"));
      const folder = dirname(modelJsonPath);
      const weightSpecs = [];
      const buffers = [];
      for (const group of model.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const path of group.paths) {
          const bytes = readFileSync(join(folder, path));
          buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        }
      }
      return {
        modelTopology: model.modelTopology,
        format: model.format,
        generatedBy: model.generatedBy,
        convertedBy: model.convertedBy,
        signature: model.signature,
        userDefinedMetadata: model.userDefinedMetadata,
        weightSpecs,
        weightData: tf.io.concatenateArrayBuffers(buffers),
      };
    },
  };
}

export async function runSignature(modelDir, signature, request) {
  const names = JSON.parse(readFileSync(join(modelDir, "signatures.json"), "utf8"))[signature];
  if (!names) throw new Error(`${modelDir} has no signature ${signature}`);
  const model = await tf.loadGraphModel(fileHandler(join(modelDir, signature, "model.json")));
  const feed = {};
  for (const [key, tfjsName] of Object.entries(names.inputs)) {
    const given = request[key];
    if (!given) throw new Error(`signature ${signature} needs input ${key}`);
    const bytes = Buffer.from(given.base64, "base64");
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const values = given.dtype === "int32" ? new Int32Array(buffer) : new Float32Array(buffer);
    feed[tfjsName] = tf.tensor(values, given.shape, given.dtype);
  }
  const keys = Object.keys(names.outputs);
  let outputs = model.execute(feed, keys.map((key) => names.outputs[key]));
  if (!Array.isArray(outputs)) outputs = [outputs];
  const answer = {};
  for (let i = 0; i < keys.length; i++) {
    // As float32 bytes in base64 (JSON has no NaN; bool outputs become 0 and 1).
    const values = Float32Array.from(await outputs[i].data(), Number);
    answer[keys[i]] = { shape: outputs[i].shape, base64: Buffer.from(values.buffer).toString("base64") };
  }
  return answer;
}

// As a program: the request on stdin, the answer on stdout.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop())) {
  const [modelDir, signature] = process.argv.slice(2);
  const request = JSON.parse(readFileSync(0, "utf8"));
  process.stdout.write(JSON.stringify(await runSignature(modelDir, signature, request)));
}
