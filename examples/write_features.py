"""Write a clap4clip features dataset from CLIP embeddings computed in Python.

A features dataset is a folder of four files (see docs/API.md, "Features datasets"):
  text.safetensors   "e":        float32 [C, P, D]  text embedding of template p filled with class c
  train.safetensors  "features": float32 [N, V, D]  V views per image (1 is fine), "labels": int32 [N]
  test.safetensors   same as train
  manifest.json      format, version, encoder, dim, logitScale, classNames, templates (written last)
Rows are L2-normalized here; labels are positions in classNames.

    pip install numpy safetensors
    python write_features.py OUT_DIR      # writes a small demo dataset from random vectors

With open_clip (pip install open_clip_torch torch), the embeddings come from:

    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-16", pretrained="openai")
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    with torch.no_grad():
        text = torch.stack([model.encode_text(tokenizer([t.format(c) for t in templates]))
                            for c in class_names])                     # [C, P, D]
        feats = torch.cat([model.encode_image(x) for x, _ in loader])  # [N, D], loader yields
                                                                       # (preprocess(image), label)
    write_features_dataset(out_dir, class_names, templates, text.numpy(), feats.numpy(), labels, ...,
                           encoder="open_clip ViT-B-16 openai", logit_scale=model.logit_scale.exp().item())
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file


def unit_rows(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_features_dataset(out_dir, class_names, templates, text, train_features, train_labels,
                           test_features, test_labels, encoder, logit_scale=100.0):
    """text [C, P, D]; features [N, D] or [N, V, D]; labels [N] in [0, C)."""
    text = unit_rows(text)
    os.makedirs(out_dir, exist_ok=True)
    save_file({"e": np.ascontiguousarray(text)}, os.path.join(out_dir, "text.safetensors"))
    for split, features, labels in (("train", train_features, train_labels), ("test", test_features, test_labels)):
        features = unit_rows(features)
        if features.ndim == 2:
            features = features[:, None, :]  # one view per image
        save_file({"features": np.ascontiguousarray(features), "labels": np.asarray(labels, dtype=np.int32)},
                  os.path.join(out_dir, f"{split}.safetensors"))
    manifest = {"format": "clap4clip-features", "version": 1, "encoder": encoder, "dim": int(text.shape[-1]),
                "logitScale": float(logit_scale), "classNames": list(class_names), "templates": list(templates)}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:  # last: a folder with a manifest is complete
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    # Demo: three classes whose image features lie near their text embeddings (D = 16, P = 2).
    rng = np.random.default_rng(0)
    class_names, templates = ["fox", "owl", "hare"], ["a photo of a {}.", "a drawing of a {}."]
    text = rng.normal(size=(3, 2, 16))
    def images(n):
        labels = np.repeat(np.arange(3), n)
        return text.mean(axis=1)[labels] + 0.3 * rng.normal(size=(3 * n, 16)), labels
    (train, train_labels), (test, test_labels) = images(20), images(5)
    write_features_dataset(sys.argv[1], class_names, templates, text, train, train_labels, test, test_labels,
                           encoder="demo: random vectors")
