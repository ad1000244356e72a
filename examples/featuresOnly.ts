/**
 * The README's features-only quickstart (the README shows this file from the `import` on, with
 * `from 'clap4clip'`; a test checks the two match and the install test runs the README's copy in
 * a new application). No encoder, no images: a features dataset folder in, predictions out.
 *
 *   npx clap4clip synth --preset tiny --out feats    # or your own features (README: "Bring your own features")
 *   npx tsc -p tsconfig.json && node dist/examples/featuresOnly.js feats
 */
import { createClassifier, loadClassifier, loadFeaturesDataset } from '../src/index.js';

// A features dataset folder: manifest.json + text.safetensors + train.safetensors + test.safetensors.
const ds = await loadFeaturesDataset(process.argv[2] ?? 'feats');
const { dim, classNames, logitScale } = ds.manifest;
const P = ds.numTemplates;

// Without an encoder, a class is its image features [n, D] and its text features [P, D]: the CLIP
// text embedding of each prompt template filled with the class name. Here: view 0 of the training
// samples of class c, and row c of text [C, P, D].
const classOf = (c: number) => {
  const rows: number[] = [];
  for (let i = 0; i < ds.train.n; i++) if (ds.train.labels[i] === c) rows.push(i);
  const features = new Float32Array(rows.length * dim);
  rows.forEach((i, r) => features.set(ds.train.features.subarray(i * ds.train.views * dim, (i * ds.train.views + 1) * dim), r * dim));
  return { name: classNames[c]!, features, textFeatures: ds.text.slice(c * P * dim, (c + 1) * P * dim) };
};

const clf = await createClassifier({ dim, logitScale, seed: 0 });
await clf.learn({ classes: [classOf(0), classOf(1)] }); // task 1: two classes
await clf.learn({ classes: [classOf(2), classOf(3)] }); // task 2: two more, without forgetting the first

// Predict the test samples of the four learned classes: a flat Float32Array [n, D] (view 0).
const test = [...ds.test.labels.keys()].filter((i) => ds.test.labels[i]! < 4);
const queries = new Float32Array(test.length * dim);
test.forEach((i, r) => queries.set(ds.test.features.subarray(i * ds.test.views * dim, (i * ds.test.views + 1) * dim), r * dim));
const predictions = await clf.predict(queries, { topK: 2 });
const correct = predictions.filter((p, r) => p.top[0]!.label === classNames[ds.test.labels[test[r]!]!]).length;
console.log(`learned ${clf.info.classes.join(', ')}; test accuracy ${correct} / ${test.length}`);
console.log('first prediction:', JSON.stringify(predictions[0]));

// save() writes a new sub-folder of 'my-classifier' and returns its path; load the folder itself.
const savedAt = await clf.save('my-classifier');
const again = await loadClassifier('my-classifier');
console.log(`saved to ${savedAt}; reloaded with ${again.info.classes.length} classes`);
