/**
 * CLIP architecture configuration: one in-memory shape ({@link ClipConfig}) read from either a Hugging Face
 * `config.json` (`CLIPModel`) or an open_clip `open_clip_config.json`, plus presets (ViT-B/16, ViT-B/32, tiny).
 *
 * Both file formats are validated with zod; a bad file fails with an error naming the file and the field,
 * e.g. `config.json: vision_config.hidden_size: expected number, received string`.
 */
import { z } from 'zod';

/** MLP activation: QuickGELU `x·σ(1.702x)` (OpenAI CLIP), exact GELU `x·Φ(x)`, or the tanh approximation. */
export type ClipAct = 'quick_gelu' | 'gelu' | 'gelu_tanh';

/** The image tower (a pre-LN ViT with a class token). */
export interface ClipVisionConfig {
  imageSize: number;
  patchSize: number;
  width: number;
  layers: number;
  heads: number;
  mlpDim: number;
  act: ClipAct;
  lnEps: number;
}

/** The text tower (a causal pre-LN transformer pooled at the end-of-text token). */
export interface ClipTextConfig {
  contextLength: number;
  vocabSize: number;
  width: number;
  layers: number;
  heads: number;
  mlpDim: number;
  act: ClipAct;
  lnEps: number;
}

export interface ClipConfig {
  vision: ClipVisionConfig;
  text: ClipTextConfig;
  /** Width of the shared image-text embedding space (the projections' output size). */
  embedDim: number;
  /** Initial value of the learned log temperature, `ln(1/0.07) ≈ 2.6592`. */
  logitScaleInit: number;
}

/** Image normalisation constants carried by an open_clip config (`preprocess_cfg`). */
export interface OpenClipPreprocess {
  mean: [number, number, number];
  std: [number, number, number];
  interpolation?: string;
  resizeMode?: string;
}

/** `ln(1/0.07)`, CLIP's initial logit scale. */
export const LOGIT_SCALE_INIT = Math.log(1 / 0.07);

/** OpenAI CLIP's image normalisation (RGB mean / std on the [0,1] scale). */
export const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** Number of patch tokens plus the class token of the image tower: `(imageSize/patchSize)² + 1`. */
export function visionTokens(v: ClipVisionConfig): number {
  const g = v.imageSize / v.patchSize;
  return g * g + 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Validation helpers

/** Formats zod issues as `file: a.b.c: message; ...`. */
function zodError(file: string, err: z.ZodError): Error {
  const parts = err.issues.map((i) => {
    const msg = /received undefined$/.test(i.message) ? `missing (${i.message.replace(/^Invalid input: /, '')})` : i.message;
    return `${i.path.length ? i.path.join('.') : '(root)'}: ${msg}`;
  });
  return new Error(`${file}: ${parts.join('; ')}`);
}

/** Checks the derived invariants every tower must satisfy (head split, patch grid). */
export function validateClipConfig(cfg: ClipConfig, file = 'config'): ClipConfig {
  const fail = (field: string, msg: string): never => {
    throw new Error(`${file}: ${field}: ${msg}`);
  };
  const posInt = (field: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) fail(field, `expected a positive integer, got ${v}`);
  };
  const v = cfg.vision;
  const t = cfg.text;
  for (const [k, x] of Object.entries({ imageSize: v.imageSize, patchSize: v.patchSize, width: v.width, layers: v.layers, heads: v.heads, mlpDim: v.mlpDim })) posInt(`vision.${k}`, x);
  for (const [k, x] of Object.entries({ contextLength: t.contextLength, vocabSize: t.vocabSize, width: t.width, layers: t.layers, heads: t.heads, mlpDim: t.mlpDim })) posInt(`text.${k}`, x);
  posInt('embedDim', cfg.embedDim);
  if (v.imageSize % v.patchSize !== 0) fail('vision.imageSize', `${v.imageSize} is not a multiple of patchSize ${v.patchSize}`);
  if (v.width % v.heads !== 0) fail('vision.width', `${v.width} is not divisible by heads ${v.heads}`);
  if (t.width % t.heads !== 0) fail('text.width', `${t.width} is not divisible by heads ${t.heads}`);
  if (!(v.lnEps > 0)) fail('vision.lnEps', `expected > 0, got ${v.lnEps}`);
  if (!(t.lnEps > 0)) fail('text.lnEps', `expected > 0, got ${t.lnEps}`);
  if (!Number.isFinite(cfg.logitScaleInit)) fail('logitScaleInit', `expected a finite number, got ${cfg.logitScaleInit}`);
  return cfg;
}

// ---------------------------------------------------------------------------------------------------------------
// Hugging Face config.json (CLIPModel)

const posInt = z.number().int().positive();
const hfAct = z.enum(['quick_gelu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast']);

/** `CLIPTextConfig` fields we use, with Hugging Face's defaults. */
const HfTextSchema = z.object({
  vocab_size: posInt.default(49408),
  hidden_size: posInt.default(512),
  intermediate_size: posInt.default(2048),
  num_hidden_layers: posInt.default(12),
  num_attention_heads: posInt.default(8),
  max_position_embeddings: posInt.default(77),
  hidden_act: hfAct.default('quick_gelu'),
  layer_norm_eps: z.number().positive().default(1e-5),
});

/** `CLIPVisionConfig` fields we use, with Hugging Face's defaults. */
const HfVisionSchema = z.object({
  hidden_size: posInt.default(768),
  intermediate_size: posInt.default(3072),
  num_hidden_layers: posInt.default(12),
  num_attention_heads: posInt.default(12),
  num_channels: z.literal(3).default(3),
  image_size: posInt.default(224),
  patch_size: posInt.default(32),
  hidden_act: hfAct.default('quick_gelu'),
  layer_norm_eps: z.number().positive().default(1e-5),
});

const HfClipSchema = z.object({
  model_type: z.literal('clip').optional(),
  projection_dim: posInt.default(512),
  logit_scale_init_value: z.number().default(LOGIT_SCALE_INIT),
  text_config: HfTextSchema,
  vision_config: HfVisionSchema,
});

function hfActToClip(a: z.infer<typeof hfAct>): ClipAct {
  if (a === 'quick_gelu') return 'quick_gelu';
  if (a === 'gelu') return 'gelu';
  return 'gelu_tanh';
}

/**
 * Reads a Hugging Face `CLIPModel` `config.json` object. Missing tower fields take Hugging Face's defaults;
 * `text_config` and `vision_config` themselves must be present.
 * @param json the parsed JSON
 * @param file the file name used in error messages
 */
export function clipConfigFromHF(json: unknown, file = 'config.json'): ClipConfig {
  const r = HfClipSchema.safeParse(json);
  if (!r.success) throw zodError(file, r.error);
  const c = r.data;
  const t = c.text_config;
  const v = c.vision_config;
  return validateClipConfig(
    {
      vision: {
        imageSize: v.image_size,
        patchSize: v.patch_size,
        width: v.hidden_size,
        layers: v.num_hidden_layers,
        heads: v.num_attention_heads,
        mlpDim: v.intermediate_size,
        act: hfActToClip(v.hidden_act),
        lnEps: v.layer_norm_eps,
      },
      text: {
        contextLength: t.max_position_embeddings,
        vocabSize: t.vocab_size,
        width: t.hidden_size,
        layers: t.num_hidden_layers,
        heads: t.num_attention_heads,
        mlpDim: t.intermediate_size,
        act: hfActToClip(t.hidden_act),
        lnEps: t.layer_norm_eps,
      },
      embedDim: c.projection_dim,
      logitScaleInit: c.logit_scale_init_value,
    },
    file,
  );
}

/** The Hugging Face `config.json` object describing `cfg` (inverse of {@link clipConfigFromHF}). */
export function clipConfigToHF(cfg: ClipConfig): Record<string, unknown> {
  const act = (a: ClipAct) => (a === 'gelu_tanh' ? 'gelu_pytorch_tanh' : a);
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: cfg.embedDim,
    logit_scale_init_value: cfg.logitScaleInit,
    text_config: {
      model_type: 'clip_text_model',
      vocab_size: cfg.text.vocabSize,
      hidden_size: cfg.text.width,
      intermediate_size: cfg.text.mlpDim,
      num_hidden_layers: cfg.text.layers,
      num_attention_heads: cfg.text.heads,
      max_position_embeddings: cfg.text.contextLength,
      hidden_act: act(cfg.text.act),
      layer_norm_eps: cfg.text.lnEps,
      projection_dim: cfg.embedDim,
      bos_token_id: cfg.text.vocabSize - 2,
      eos_token_id: cfg.text.vocabSize - 1,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: cfg.vision.width,
      intermediate_size: cfg.vision.mlpDim,
      num_hidden_layers: cfg.vision.layers,
      num_attention_heads: cfg.vision.heads,
      num_channels: 3,
      image_size: cfg.vision.imageSize,
      patch_size: cfg.vision.patchSize,
      hidden_act: act(cfg.vision.act),
      layer_norm_eps: cfg.vision.lnEps,
      projection_dim: cfg.embedDim,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// open_clip open_clip_config.json

/** Options that change the architecture away from the plain CLIP ViT/text towers; only their defaults are supported. */
function unsupported<T extends z.ZodType>(schema: T, isDefault: (v: z.infer<T>) => boolean, what: string) {
  return schema.optional().refine((v) => v === undefined || v === null || isDefault(v as z.infer<T>), { message: `not supported (${what})` });
}

const OcVisionSchema = z.object({
  image_size: z.union([posInt, z.tuple([posInt, posInt])]).default(224),
  layers: posInt.default(12),
  width: posInt.default(768),
  head_width: posInt.default(64),
  mlp_ratio: z.number().positive().default(4),
  patch_size: posInt.default(16),
  timm_model_name: unsupported(z.string().nullable(), () => false, 'timm image towers'),
  ls_init_value: unsupported(z.number().nullable(), () => false, 'layer scale'),
  attentional_pool: unsupported(z.boolean(), (v) => v === false, 'attentional pooling'),
  global_average_pool: unsupported(z.boolean(), (v) => v === false, 'average pooling'),
  pool_type: unsupported(z.string(), (v) => v === 'tok', 'only the class-token pool "tok"'),
  final_ln_after_pool: unsupported(z.boolean(), (v) => v === false, 'LN after pool'),
  no_ln_pre: unsupported(z.boolean(), (v) => v === false, 'a tower without ln_pre'),
  input_patchnorm: unsupported(z.boolean(), (v) => v === false, 'patch norm'),
  pos_embed_type: unsupported(z.string(), (v) => v === 'learnable', 'only learnable position embeddings'),
});

const OcTextSchema = z.object({
  context_length: posInt.default(77),
  vocab_size: posInt.default(49408),
  width: posInt.default(512),
  heads: posInt.default(8),
  layers: posInt.default(12),
  mlp_ratio: z.number().positive().default(4),
  hf_model_name: unsupported(z.string().nullable(), () => false, 'Hugging Face text towers'),
  ls_init_value: unsupported(z.number().nullable(), () => false, 'layer scale'),
  embed_cls: unsupported(z.boolean(), (v) => v === false, 'a CLS text token'),
  no_causal_mask: unsupported(z.boolean(), (v) => v === false, 'a text tower without causal mask'),
  pool_type: unsupported(z.string(), (v) => v === 'argmax', 'only argmax (EOT) pooling'),
  proj_bias: unsupported(z.boolean(), (v) => v === false, 'a biased text projection'),
});

const triple = z.tuple([z.number(), z.number(), z.number()]);
const OcPreprocessSchema = z
  .object({
    mean: triple.default(OPENAI_CLIP_MEAN),
    std: triple.default(OPENAI_CLIP_STD),
    interpolation: z.string().optional(),
    resize_mode: z.string().optional(),
  })
  .default({ mean: OPENAI_CLIP_MEAN, std: OPENAI_CLIP_STD });

const OcSchema = z.object({
  model_cfg: z.object({
    embed_dim: posInt,
    quick_gelu: z.boolean().default(false),
    vision_cfg: OcVisionSchema,
    text_cfg: OcTextSchema,
  }),
  preprocess_cfg: OcPreprocessSchema,
});

/**
 * Reads an open_clip `open_clip_config.json` object (`model_cfg` + `preprocess_cfg`).
 * Vision heads are `width / head_width` (default head width 64); MLP widths are `round(width · mlp_ratio)`;
 * the activation is QuickGELU when `quick_gelu` is true, else exact GELU; LayerNorm eps is PyTorch's 1e-5.
 */
export function clipConfigFromOpenClip(json: unknown, file = 'open_clip_config.json'): { config: ClipConfig; preprocess: OpenClipPreprocess } {
  const r = OcSchema.safeParse(json);
  if (!r.success) throw zodError(file, r.error);
  const m = r.data.model_cfg;
  const v = m.vision_cfg;
  const t = m.text_cfg;
  const act: ClipAct = m.quick_gelu ? 'quick_gelu' : 'gelu';
  let imageSize: number;
  if (Array.isArray(v.image_size)) {
    if (v.image_size[0] !== v.image_size[1]) throw new Error(`${file}: model_cfg.vision_cfg.image_size: only square images are supported, got ${JSON.stringify(v.image_size)}`);
    imageSize = v.image_size[0];
  } else imageSize = v.image_size;
  if (v.width % v.head_width !== 0) throw new Error(`${file}: model_cfg.vision_cfg.head_width: width ${v.width} is not a multiple of head_width ${v.head_width}`);
  const config = validateClipConfig(
    {
      vision: {
        imageSize,
        patchSize: v.patch_size,
        width: v.width,
        layers: v.layers,
        heads: v.width / v.head_width,
        mlpDim: Math.round(v.width * v.mlp_ratio),
        act,
        lnEps: 1e-5,
      },
      text: {
        contextLength: t.context_length,
        vocabSize: t.vocab_size,
        width: t.width,
        layers: t.layers,
        heads: t.heads,
        mlpDim: Math.round(t.width * t.mlp_ratio),
        act,
        lnEps: 1e-5,
      },
      embedDim: m.embed_dim,
      logitScaleInit: LOGIT_SCALE_INIT,
    },
    file,
  );
  const p = r.data.preprocess_cfg;
  const preprocess: OpenClipPreprocess = { mean: p.mean, std: p.std };
  if (p.interpolation !== undefined) preprocess.interpolation = p.interpolation;
  if (p.resize_mode !== undefined) preprocess.resizeMode = p.resize_mode;
  return { config, preprocess };
}

/**
 * The open_clip config object describing `cfg` (inverse of {@link clipConfigFromOpenClip}). open_clip cannot express
 * a tanh GELU, per-tower activations, or eps other than 1e-5; such configs are rejected.
 */
export function clipConfigToOpenClip(cfg: ClipConfig, preprocess?: OpenClipPreprocess): Record<string, unknown> {
  const { vision: v, text: t } = cfg;
  if (v.act !== t.act || v.act === 'gelu_tanh') throw new Error(`open_clip configs need one activation, quick_gelu or gelu, for both towers (got ${v.act}/${t.act})`);
  if (v.lnEps !== 1e-5 || t.lnEps !== 1e-5) throw new Error('open_clip configs need layer-norm eps 1e-5');
  return {
    model_cfg: {
      embed_dim: cfg.embedDim,
      quick_gelu: v.act === 'quick_gelu',
      vision_cfg: {
        image_size: v.imageSize,
        layers: v.layers,
        width: v.width,
        head_width: v.width / v.heads,
        mlp_ratio: v.mlpDim / v.width,
        patch_size: v.patchSize,
      },
      text_cfg: {
        context_length: t.contextLength,
        vocab_size: t.vocabSize,
        width: t.width,
        heads: t.heads,
        layers: t.layers,
        mlp_ratio: t.mlpDim / t.width,
      },
    },
    preprocess_cfg: {
      mean: preprocess?.mean ?? OPENAI_CLIP_MEAN,
      std: preprocess?.std ?? OPENAI_CLIP_STD,
      interpolation: preprocess?.interpolation ?? 'bicubic',
      resize_mode: preprocess?.resizeMode ?? 'shortest',
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Presets

const B_TEXT: ClipTextConfig = { contextLength: 77, vocabSize: 49408, width: 512, layers: 12, heads: 8, mlpDim: 2048, act: 'quick_gelu', lnEps: 1e-5 };

/** Shapes of OpenAI's CLIP ViT-B/16 (image 224, patch 16, width 768 × 12 layers; text 512 × 12; embed 512). */
export const VIT_B_16: ClipConfig = {
  vision: { imageSize: 224, patchSize: 16, width: 768, layers: 12, heads: 12, mlpDim: 3072, act: 'quick_gelu', lnEps: 1e-5 },
  text: B_TEXT,
  embedDim: 512,
  logitScaleInit: LOGIT_SCALE_INIT,
};

/** Shapes of OpenAI's CLIP ViT-B/32 (as ViT-B/16 with 32-pixel patches). */
export const VIT_B_32: ClipConfig = {
  vision: { ...VIT_B_16.vision, patchSize: 32 },
  text: B_TEXT,
  embedDim: 512,
  logitScaleInit: LOGIT_SCALE_INIT,
};

/**
 * A tiny CLIP for tests and demos: 32-pixel images in 8-pixel patches (17 tokens), width 32, 2 heads, 2 layers
 * per tower, the real 49 408-token vocabulary, context 16, embed 16. Override any part with `overrides`.
 */
export function tinyClipConfig(overrides: { vision?: Partial<ClipVisionConfig>; text?: Partial<ClipTextConfig>; embedDim?: number; logitScaleInit?: number } = {}): ClipConfig {
  return validateClipConfig({
    vision: { imageSize: 32, patchSize: 8, width: 32, layers: 2, heads: 2, mlpDim: 64, act: 'quick_gelu', lnEps: 1e-5, ...overrides.vision },
    text: { contextLength: 16, vocabSize: 49408, width: 32, layers: 2, heads: 2, mlpDim: 64, act: 'quick_gelu', lnEps: 1e-5, ...overrides.text },
    embedDim: overrides.embedDim ?? 16,
    logitScaleInit: overrides.logitScaleInit ?? LOGIT_SCALE_INIT,
  });
}

/** Named presets: `ViT-B-16`, `ViT-B-32`, `tiny`. */
export const CLIP_PRESETS: Record<string, () => ClipConfig> = {
  'ViT-B-16': () => structuredClone(VIT_B_16),
  'ViT-B-32': () => structuredClone(VIT_B_32),
  tiny: () => tinyClipConfig(),
};
