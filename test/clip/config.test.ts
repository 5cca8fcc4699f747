import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clipConfigFromHF,
  clipConfigFromOpenClip,
  clipConfigToHF,
  clipConfigToOpenClip,
  tinyClipConfig,
  visionTokens,
  VIT_B_16,
  VIT_B_32,
  LOGIT_SCALE_INIT,
} from '../../src/clip/config.ts';
import { clipParamCount } from '../../src/clip/weights.ts';

test('HF config.json of ViT-B/16 (as published by openai/clip-vit-base-patch16) parses to the preset', () => {
  // the fields of the real file that matter (others are ignored)
  const json = {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: 512,
    logit_scale_init_value: 2.6592,
    text_config: { hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8, num_hidden_layers: 12, max_position_embeddings: 77, vocab_size: 49408, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, bos_token_id: 0, dropout: 0 },
    vision_config: { hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, num_hidden_layers: 12, image_size: 224, patch_size: 16, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 },
  };
  const c = clipConfigFromHF(json);
  assert.deepEqual(c.vision, VIT_B_16.vision);
  assert.deepEqual(c.text, VIT_B_16.text);
  assert.equal(c.embedDim, 512);
  assert.equal(visionTokens(c.vision), 197);
});

test('HF defaults fill missing tower fields (ViT-B/32 shapes are the HF defaults)', () => {
  const c = clipConfigFromHF({ text_config: {}, vision_config: {} });
  assert.deepEqual(c.vision, VIT_B_32.vision);
  assert.deepEqual(c.text, VIT_B_32.text);
  assert.equal(c.embedDim, 512);
  assert.equal(c.logitScaleInit, LOGIT_SCALE_INIT);
  assert.equal(visionTokens(c.vision), 50);
});

test('HF activations map: gelu → gelu, gelu_new → gelu_tanh', () => {
  const c = clipConfigFromHF({ text_config: { hidden_act: 'gelu' }, vision_config: { hidden_act: 'gelu_new' } });
  assert.equal(c.text.act, 'gelu');
  assert.equal(c.vision.act, 'gelu_tanh');
});

test('open_clip ViT-B-16 config: heads from head_width, MLP from mlp_ratio, GELU unless quick_gelu', () => {
  const json = {
    model_cfg: { embed_dim: 512, vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 16 }, text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 } },
    preprocess_cfg: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], interpolation: 'bicubic' },
  };
  const { config, preprocess } = clipConfigFromOpenClip(json);
  assert.equal(config.vision.heads, 12);
  assert.equal(config.vision.mlpDim, 3072);
  assert.equal(config.text.mlpDim, 2048);
  assert.equal(config.vision.act, 'gelu');
  assert.equal(config.text.act, 'gelu');
  assert.deepEqual(preprocess.mean, [0.5, 0.5, 0.5]);
  assert.equal(preprocess.interpolation, 'bicubic');
  const q = clipConfigFromOpenClip({ ...json, model_cfg: { ...json.model_cfg, quick_gelu: true } });
  assert.deepEqual(q.config, VIT_B_16);
});

test('configs round-trip through both file formats', () => {
  const tiny = tinyClipConfig();
  assert.deepEqual(clipConfigFromHF(JSON.parse(JSON.stringify(clipConfigToHF(tiny)))), tiny);
  assert.deepEqual(clipConfigFromOpenClip(JSON.parse(JSON.stringify(clipConfigToOpenClip(tiny)))).config, tiny);
  const gelu = tinyClipConfig({ vision: { act: 'gelu_tanh' }, text: { lnEps: 1e-6 } });
  assert.deepEqual(clipConfigFromHF(clipConfigToHF(gelu)), gelu);
  assert.throws(() => clipConfigToOpenClip(gelu), /activation/);
});

test('bad configs fail naming the file and the field', () => {
  assert.throws(() => clipConfigFromHF({ text_config: {} }, 'm/config.json'), /m\/config\.json: vision_config: .*/);
  assert.throws(() => clipConfigFromHF({ text_config: { hidden_size: '512' }, vision_config: {} }, 'config.json'), /config\.json: text_config\.hidden_size:/);
  assert.throws(() => clipConfigFromHF({ model_type: 'siglip', text_config: {}, vision_config: {} }), /config\.json: model_type:/);
  assert.throws(() => clipConfigFromHF({ text_config: { hidden_size: 100, num_attention_heads: 8 }, vision_config: {} }), /config\.json: text\.width: 100 is not divisible by heads 8/);
  assert.throws(() => clipConfigFromHF({ text_config: {}, vision_config: { image_size: 100, patch_size: 32 } }), /vision\.imageSize/);
  const oc = { model_cfg: { vision_cfg: {}, text_cfg: {} } };
  assert.throws(() => clipConfigFromOpenClip(oc, 'x/open_clip_config.json'), /x\/open_clip_config\.json: model_cfg\.embed_dim:/);
  assert.throws(() => clipConfigFromOpenClip({ model_cfg: { embed_dim: 512, vision_cfg: { timm_model_name: 'vit' }, text_cfg: {} } }), /model_cfg\.vision_cfg\.timm_model_name: not supported/);
  assert.throws(() => clipConfigFromOpenClip({ model_cfg: { embed_dim: 512, vision_cfg: {}, text_cfg: { hf_model_name: 'bert' } } }), /model_cfg\.text_cfg\.hf_model_name: not supported/);
});

test('ViT-B/16 parameter count matches the published 149.6 M', () => {
  // OpenAI ViT-B/16: 149,620,737 parameters (image 86.19 M incl. projection, text 63.43 M incl. projection, + logit scale)
  assert.equal(clipParamCount(VIT_B_16), 149620737);
});
