/**
 * What the feature cache needs from a CLIP-family encoder. Implementations: transformers.js models
 * (`clip.ts`): a hub id or a local folder in the transformers.js layout.
 */

/** A decoded RGB image, 8 bits per channel, row-major HWC (as transformers.js `RawImage` with 3 channels). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

export interface EncoderInfo {
  /** Model id or folder as given by the user. */
  id: string;
  /** Embedding width D. */
  dim: number;
  /** Weights' dtype (`fp32` default; quantized exports shift embeddings). */
  dtype: string;
  /** exp(logit_scale) of the model (100 for OpenAI CLIP). */
  logitScale: number;
}

export interface ClipEncoder {
  readonly info: EncoderInfo;
  /** Unit-norm image embeddings [B, D] after CLIP preprocessing (resize 224 bicubic, center crop, mean/std). */
  encodeImages(images: RgbImage[]): Promise<Float32Array>;
  /** Unit-norm text embeddings [N, D]. */
  encodeTexts(texts: string[]): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Horizontal mirror image (the reference's flip augmentation, cached as view 1). */
export function mirrorImage(img: RgbImage): RgbImage {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (y * w + x) * 3, dst = (y * w + (w - 1 - x)) * 3;
      out[dst] = data[src]!;
      out[dst + 1] = data[src + 1]!;
      out[dst + 2] = data[src + 2]!;
    }
  }
  return { width: w, height: h, data: out };
}
